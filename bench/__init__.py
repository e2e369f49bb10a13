"""Benchmark of whole calls against `ivr serve`, side by side with a bare floor app."""
