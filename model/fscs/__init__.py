"""Integrative few-shot classification and segmentation ("Integrative Few-Shot Learning for
Classification and Segmentation", CVPR 2022): the iFSL head, hypercorrelation, center-pivot 4D
convolution, and the ASNet and HSNet learners."""
