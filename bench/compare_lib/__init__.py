"""The pieces of bench/compare: env (binaries, fixtures), servers, drivers (load clients and their output
parsers), idle_client (the client that holds idle connections, run as its own process), procstat (CPU and memory
from /proc), matrix (definitions and plans), runner (one run), programs (matrices of benchmark programs that
compare both sides themselves), report (statistics, Markdown, chart, doc splice). Standard library and matplotlib
only."""
