"""`respond rotate`: the checks before a rotation opens, starting it, a human's
`--continue`, and re-activating the old key (the steps are in steps/rotate*.py).
"""
