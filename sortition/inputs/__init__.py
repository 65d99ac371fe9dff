"""Layer 2, inputs: the pool and the quotas, loaded, checked and fingerprinted.

The pool (and its strata: people with the same quota features), the quotas, the census margins
and the synthetic pool built from them, the household pre-draw, the fingerprints, and
`load.load_inputs`, which loads all of it for the later stages. Imports only from `core`.
"""
