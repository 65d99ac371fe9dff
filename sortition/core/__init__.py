"""Layer 1, core: what every stage shares and nothing in it knows about pools or quotas.

Errors and their exit statuses, size caps, text options, terminal-safe text, the draw
specification's random streams, CSV cells, spreadsheets, the output policy, built-in files and
the reading of published files as hostile input. Imports nothing from the other layers.
"""
