"""SSN3D (Liu et al., ICIP 2018): subtomogram semantic segmentation.

``datasets`` (data sets A, B, C as crowded-generator configurations, the dose calibration and
the count analysis), ``training`` (the paper's recipe and the released code's deviations),
``splits`` (random and leave-one-class-out), ``paper_tables`` (Tables 2 and 3 as cited) and
``claims`` (the cited numbers the landing table compares).
"""
