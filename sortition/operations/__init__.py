"""Layer 7, operations on a drawn panel and the whole process: replace dropouts, simulate them,
verify a bundle, the end-to-end demo, and the terminal tables. Imports only from the layers
below; `sortition.cli` (layer 8) is the only module above.
"""
