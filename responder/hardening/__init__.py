"""`respond harden USER`'s pure core: after a key leak, turn what the user really did in
CloudTrail (before the compromise) into a least-privilege policy, list what the user's
current policies grant but were never used, and propose an MFA-enforcing policy. Kept free
of AWS calls so the reasoning can be tested on plain records and reviewed on its own; the
AWS step and the CLI fetch the events and policies and hand them in.
"""
