"""The pieces of bench/compare: env (binaries, fixtures), servers, drivers (load clients and their output
parsers), procstat (CPU from /proc), matrix (definitions and plans), runner (one run), report (statistics,
Markdown, chart, doc splice). Standard library and matplotlib only."""
