"""`respond audit`: one credential report turned into ranked findings, with the fix for
each (no journal: an audit changes nothing).
"""
