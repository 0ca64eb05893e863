"""What an attacker's CloudTrail events mean and how the responder answers them
(rules.py), read by contain-attacker, the sweeps, rollback and the drill's checks.
"""
