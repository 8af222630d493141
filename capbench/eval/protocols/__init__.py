"""Evaluation protocols: one module per protocol, each taking embeddings (or similarity
functions) from any method and scoring them the way its paper does, on the shared retrieval
engine (``capbench.eval.retrieval``) and metrics (``capbench.eval.metrics``).

* ``semantic_retrieval``: Gordo & Larlus 2017 (queries and database from a Visual Genome style
  split, tf-idf relevance, NDCG@R / PCC@R curves and AUCs, user-study agreement).
"""
