"""SSN3D (Liu et al., ICIP 2018): subtomogram semantic segmentation."""
