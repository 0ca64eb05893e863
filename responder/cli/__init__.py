"""The command line: argument parsing (args.py), the commands (commands.py for the
response, lifecycle.py for audit, rotate, harden and rollback) and printing
(output.py). No AWS logic: every command hands a RunContext to run/ and prints what
comes back.
"""
