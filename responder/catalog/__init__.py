"""What an attacker's CloudTrail events mean and how to undo them, as data."""
