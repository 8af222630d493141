"""Evaluation protocols: one module per protocol, each taking embeddings (or similarity
functions) from any method and scoring them the way its paper does, on the shared retrieval
engine (``capbench.eval.retrieval``) and metrics (``capbench.eval.metrics``).

* ``semantic_retrieval``: Gordo & Larlus 2017 (queries and database from a Visual Genome style
  split, tf-idf relevance, NDCG@R / PCC@R curves and AUCs, user-study agreement).
* ``image_text_retrieval``: COCO 1K/5K, Flickr30k and Flickr8k Recall@K both ways and rsum, by L2
  or inner product, on continuous embeddings or product-quantization codes (Malali & Keller,
  VSE0/VSE++).
"""
