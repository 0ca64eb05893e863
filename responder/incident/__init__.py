"""One typed picture of an incident: the facts each step establishes (facts*.py), the
action contract and registry (action.py, kinds.py), when sweeps are due (sweeps.py),
and the view that reads the journal back into those types (view.py).
"""
