"""Structures: PDB/mmCIF/MRC reading, atoms -> density, membranes, and the class-set catalogue."""
