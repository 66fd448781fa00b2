"""NTRENet ("Learning Non-target Knowledge for Few-shot Semantic Segmentation", CVPR 2022) and
PFENet, its baseline with the NTRENet modules off: BGMM, BGEM, FM, DOEM and PCL."""
