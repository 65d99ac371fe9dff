"""Layer 5, draw: from a public seed and a published lottery to a panel and its replacement
lists, by the fixed procedure of docs/draw-spec.md. Imports only from the layers below.
"""
