"""BAM ("Learning What Not to Segment: A New Perspective on Few-Shot Segmentation", CVPR 2022): the
base learner (PSPNet), the meta learners (its own, NTRENet's), the Gram-matrix scene difference,
K-shot fusion and the ensemble."""
