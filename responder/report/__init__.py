"""Render an incident's view: the DESIGN §2 document (model.py, document.py), report.md
(markdown.py), the HTML page (html.py), the rotation and hardening parts, and the
notices with their SNS and Slack renderings (notice.py, notify.py).
"""
