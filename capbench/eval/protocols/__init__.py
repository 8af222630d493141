"""Evaluation protocols: one module per protocol, each taking embeddings (or similarity
functions) from any method and scoring them the way its paper does, on the shared retrieval
engine (``capbench.eval.retrieval``) and metrics (``capbench.eval.metrics``).

* ``semantic_retrieval``: Gordo & Larlus 2017 (queries and database from a Visual Genome style
  split, tf-idf relevance, NDCG@R / PCC@R curves and AUCs, user-study agreement).
* ``image_text_retrieval``: COCO 1K/5K, Flickr30k and Flickr8k Recall@K both ways and rsum, by L2
  or inner product, on continuous embeddings or product-quantization codes (Malali & Keller,
  VSE0/VSE++).
* ``zero_shot``: Reed et al. 2016 zero-shot top-1 and AP@50 on unseen classes.
* ``graded_retrieval``: Mopuri et al. 2017 nDCG@K on graded (0..3) relevance, 5 folds of queries.
* ``voc07_classification``: VOC07 per-class linear SVMs on frozen features (Goyal et al. 2019; ICMLM).
"""
