"""The shipped playbooks (YAML) and their JSON schema, installed as package data."""
