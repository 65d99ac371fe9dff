"""Layer 6, bundle: the public bundle of a draw — its audit.json, report.html and verify.html —
written atomically, and read back as hostile input. Imports only from the layers below.
"""
