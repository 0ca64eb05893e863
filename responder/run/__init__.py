"""Running incidents: the application service (service.py), the one step executor
(executor.py), the state machine and its runner (machine.py, runner.py), the lease,
the work appended after a playbook (followup.py), findings answered one by one
(trigger.py) and `respond harden` (harden.py).
"""
