"""Layer 4, lottery: every person's chance, and the published lottery.

Quota-satisfying panels and their solvers, the feasibility check, LEXIMIN (and the other
algorithms), the legacy greedy baseline, `lottery.json`, and the `lottery` step for loaded
inputs. Imports only from the layers below (`core`, `inputs`, `recruitment`).
"""
