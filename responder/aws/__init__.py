"""The AWS layer: botocore sessions (sessions.py), the one retry policy and journaled
calls (Api, in this module), and the per-region rate limiter (ratelimit.py).
"""
