"""DSM-Net: multi-task classification, segmentation and coarse structure recovery."""
