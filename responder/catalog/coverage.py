"""Which public attack techniques the catalog answers, and why the rest are not in it.

The list is Stratus Red Team's AWS techniques (DataDog/stratus-red-team, docs/attack-
techniques/AWS/index.md, read 2026-12-06). A technique is covered when some entry names
it in `Entry.techniques`; every other one says here why not. tests/test_catalog.py holds
the two together, and docs/attacker-catalog.md prints both.
"""

from __future__ import annotations

from collections.abc import Mapping

COVERED = ""
"""The technique is answered by the entries that name it."""

STRATUS: Mapping[str, str] = {
    "aws.credential-access.ec2-get-password-data": COVERED,
    "aws.credential-access.ec2-steal-instance-credentials": COVERED,
    "aws.credential-access.secretsmanager-batch-retrieve-secrets": COVERED,
    "aws.credential-access.secretsmanager-retrieve-secrets": COVERED,
    "aws.credential-access.ssm-retrieve-securestring-parameters": COVERED,
    "aws.defense-evasion.cloudtrail-delete": COVERED,
    "aws.defense-evasion.cloudtrail-event-selectors": COVERED,
    "aws.defense-evasion.cloudtrail-lifecycle-rule": COVERED,
    "aws.defense-evasion.cloudtrail-stop": COVERED,
    "aws.defense-evasion.dns-delete-logs": COVERED,
    "aws.defense-evasion.organizations-leave": COVERED,
    "aws.defense-evasion.vpc-remove-flow-logs": COVERED,
    "aws.discovery.ec2-download-user-data":
        "reads (DescribeInstanceAttribute) change nothing to undo; the evidence lists "
        "every call, and user data holding secrets is a finding for the instance's owner",
    "aws.discovery.ec2-enumerate-from-instance":
        "discovery from an instance's own credentials: reads only, and not the leaked key's",
    "aws.discovery.ses-enumerate": "reads only: nothing to undo; listed in the evidence",
    "aws.execution.ec2-launch-unusual-instances": COVERED,
    "aws.execution.ec2-user-data": COVERED,
    "aws.execution.sagemaker-update-lifecycle-config": COVERED,
    "aws.execution.ssm-send-command": COVERED,
    "aws.execution.ssm-start-session": COVERED,
    "aws.exfiltration.ec2-security-group-open-port-22-ingress": COVERED,
    "aws.exfiltration.ec2-share-ami": COVERED,
    "aws.exfiltration.ec2-share-ebs-snapshot": COVERED,
    "aws.exfiltration.rds-share-snapshot": COVERED,
    "aws.exfiltration.s3-backdoor-bucket-policy": COVERED,
    "aws.impact.bedrock-invoke-model":
        "impact (spending on model invocations) leaves nothing to undo once the key is "
        "disabled; the evidence counts the calls",
    "aws.impact.ec2-deregister-ami":
        "impact: a deregistered AMI is gone (its snapshot stays); recovery, not containment",
    "aws.impact.s3-ransomware-batch-deletion":
        "impact: data events (DeleteObjects) are not in the management events LookupEvents "
        "reads; deleted objects come back from versions or backups",
    "aws.impact.s3-ransomware-client-side-encryption":
        "impact: data events (PutObject) are not in the management events LookupEvents "
        "reads",
    "aws.impact.s3-ransomware-individual-deletion":
        "impact: data events (DeleteObject) are not in the management events LookupEvents "
        "reads",
    "aws.initial-access.console-login-without-mfa":
        "a sign-in, not a change: ConsoleLogin is high-risk in the evidence, and the "
        "password behind it is covered (iam.CreateLoginProfile, iam.UpdateLoginProfile)",
    "aws.lateral-movement.ec2-instance-connect": COVERED,
    "aws.lateral-movement.ec2-serial-console-send-ssh-public-key": COVERED,
    "aws.persistence.iam-backdoor-role": COVERED,
    "aws.persistence.iam-backdoor-user": COVERED,
    "aws.persistence.iam-create-admin-user": COVERED,
    "aws.persistence.iam-create-backdoor-role": COVERED,
    "aws.persistence.iam-create-user-login-profile": COVERED,
    "aws.persistence.lambda-backdoor-function": COVERED,
    "aws.persistence.lambda-layer-extension": COVERED,
    "aws.persistence.lambda-overwrite-code": COVERED,
    "aws.persistence.rolesanywhere-create-trust-anchor": COVERED,
    "aws.persistence.sts-federation-token": COVERED,
    "aws.privilege-escalation.iam-update-user-login-profile": COVERED,
}
