"""QGNet ("Few-Shot Segmentation with Global and Local Contrastive Learning"): the prior extractor,
its contrastive pre-training, the query's prior region maps and the QGNet method."""
