"""Storage opened to the outside: S3 bucket policies, ACLs, public access blocks, lifecycle
rules and replication, and shared EBS snapshots, AMIs and RDS snapshots."""

from __future__ import annotations

import re
from collections.abc import Mapping

from responder.catalog.model import PRESENT, Command, Entry, Manual, Meaning, Value

S3 = "s3.amazonaws.com"
EC2 = "ec2.amazonaws.com"
RDS = "rds.amazonaws.com"
BUCKET = {"bucket": "requestParameters.bucketName"}
GRANTEE = "requestParameters.AccessControlPolicy.AccessControlList.Grant[].Grantee.URI"
CANNED = "requestParameters.x-amz-acl[]"
GROUPS = "http://acs.amazonaws.com/groups/global/"
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
BLOCK_ALL = ",".join(f"{setting}=true" for setting in SETTINGS)
"""The public access block with every setting on, as the CLI's shorthand."""
BLOCK_NOTE = ("if a setting was off before this event on purpose (a public website bucket), "
              "leave that one off")
REPLICATION = "requestParameters.ReplicationConfiguration.Rule[].Destination"
LIFECYCLE = "requestParameters.LifecycleConfiguration.Rule[]"


def _s3(operation: str, params: Mapping[str, Value]) -> Command:
    """An S3 command: S3 is addressed by bucket, not by region."""
    return Command("s3", operation, params, regional=False)


def _kebab(name: str) -> str:
    """`BlockPublicAcls` -> `block-public-acls`, for a variant's name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _shares(kind: str, event: str, member: str, *, attribute: str, public_member: str,
            technique: str) -> tuple[Entry, Entry]:
    """An EC2 image or snapshot permission that adds everyone, and one that adds accounts;
    undone by removing the same group or accounts."""
    added = f"requestParameters.{attribute}.add.items[]"
    fields = {"resource": f"requestParameters.{member[0].lower()}{member[1:]}",
              "accounts": f"{added}.userId"}
    outside = (f"{added}.userId", f"{added}.group")
    undo = {member: "{resource}", "Attribute": attribute, "OperationType": "remove"}
    techniques = (technique, "T1537")
    return (
        Entry(EC2, event, Meaning.EXFILTRATES, f"made {kind} {{resource}} public in {{region}}",
              fields, (Command("ec2", event, {**undo, public_member: "all"}),),
              when={f"{added}.group": "all"}, outside=outside, variant="public",
              techniques=techniques),
        Entry(EC2, event, Meaning.EXFILTRATES,
              f"shared {kind} {{resource}} with {{accounts}} in {{region}}",
              fields, (Command("ec2", event, {**undo, "UserIds": "{accounts}"}),),
              when={f"{added}.userId": PRESENT}, outside=outside, techniques=techniques),
    )


def _rds_shares(kind: str, event: str, member: str) -> tuple[Entry, Entry]:
    """An RDS snapshot's restore attribute opened to everyone, or to accounts; undone with
    --values-to-remove."""
    added = "requestParameters.valuesToAdd[]"
    fields = {"snapshot": f"requestParameters.{member[0].lower()}{member[1:]}",
              "accounts": added}
    undo = {member: "{snapshot}", "AttributeName": "restore"}
    restore = {"requestParameters.attributeName": "restore"}
    techniques = ("aws.exfiltration.rds-share-snapshot", "T1537")
    return (
        Entry(RDS, event, Meaning.EXFILTRATES, f"made {kind} {{snapshot}} public in {{region}}",
              fields, (Command("rds", event, {**undo, "ValuesToRemove": "all"}),),
              when={**restore, added: "all"}, outside=(added,), variant="public",
              techniques=techniques),
        Entry(RDS, event, Meaning.EXFILTRATES,
              f"shared {kind} {{snapshot}} with {{accounts}} in {{region}}",
              fields, (Command("rds", event, {**undo, "ValuesToRemove": "{accounts}"}),),
              when={**restore, added: PRESENT}, outside=(added,), techniques=techniques),
    )


ENTRIES: tuple[Entry, ...] = (
    # -- S3 bucket policy and ACL -----------------------------------------------------------
    Entry(S3, "PutBucketPolicy", Meaning.GRANTS_OUTSIDE, "put a new policy on bucket {bucket}",
          BUCKET,
          (_s3("PutBucketPolicy", {
              "Bucket": "{bucket}",
              "Policy": Manual("file:// the bucket policy before this event")}),),
          note="if the bucket had no policy before this event, delete-bucket-policy instead",
          outside=("requestParameters.bucketPolicy|policy",),
          techniques=("aws.exfiltration.s3-backdoor-bucket-policy", "T1537")),
    Entry(S3, "DeleteBucketPolicy", Meaning.WEAKENS_DEFENSES,
          "deleted the policy of bucket {bucket}", BUCKET,
          (_s3("PutBucketPolicy", {
              "Bucket": "{bucket}",
              "Policy": Manual("file:// the bucket policy before this event")}),),
          note="its deny statements are gone, and a trail or log bucket without its policy "
               "stops receiving logs",
          techniques=("T1562",)),
    *(Entry(S3, "PutBucketAcl", Meaning.GRANTS_OUTSIDE,
            f"granted {who} access to bucket {{bucket}} by its ACL", BUCKET,
            (_s3("PutBucketAcl", {"Bucket": "{bucket}", "ACL": "private"}),),
            note="put back any grant the bucket had before this event (log delivery, another "
                 "account) with --access-control-policy",
            when={GRANTEE: GROUPS + group}, outside=(GRANTEE,), variant=variant,
            techniques=("T1537",))
      for variant, group, who in (("public", "AllUsers", "everyone (AllUsers)"),
                                  ("authenticated", "AuthenticatedUsers",
                                   "every AWS account (AuthenticatedUsers)"))),
    *(Entry(S3, "PutBucketAcl", Meaning.GRANTS_OUTSIDE,
            f"set the canned ACL {acl} on bucket {{bucket}}", BUCKET,
            (_s3("PutBucketAcl", {"Bucket": "{bucket}", "ACL": "private"}),),
            note="put back any grant the bucket had before this event (log delivery, another "
                 "account) with --access-control-policy",
            when={CANNED: acl}, outside=(CANNED,), variant=acl, techniques=("T1537",))
      for acl in ("public-read", "public-read-write", "authenticated-read")),
    # -- S3 public access blocks ------------------------------------------------------------
    *(Entry(S3, "PutBucketPublicAccessBlock", Meaning.WEAKENS_DEFENSES,
            f"turned off {setting} in the public access block of bucket {{bucket}}", BUCKET,
            (_s3("PutPublicAccessBlock", {"Bucket": "{bucket}",
                                          "PublicAccessBlockConfiguration": BLOCK_ALL}),),
            note=BLOCK_NOTE,
            when={f"requestParameters.PublicAccessBlockConfiguration.{setting}": "false"},
            variant=_kebab(setting), techniques=("T1562",))
      for setting in SETTINGS),
    Entry(S3, "DeleteBucketPublicAccessBlock", Meaning.WEAKENS_DEFENSES,
          "deleted the public access block of bucket {bucket}", BUCKET,
          (_s3("PutPublicAccessBlock", {"Bucket": "{bucket}",
                                        "PublicAccessBlockConfiguration": BLOCK_ALL}),),
          note=BLOCK_NOTE, techniques=("T1562",)),
    *(Entry(S3, "PutAccountPublicAccessBlock", Meaning.WEAKENS_DEFENSES,
            f"turned off {setting} in the account's S3 public access block",
            {"endpoint": "requestParameters.Host"},
            (Command("s3control", "PutPublicAccessBlock", {
                "AccountId": Manual("this account's id"),
                "PublicAccessBlockConfiguration": BLOCK_ALL}, regional=False),),
            note=BLOCK_NOTE,
            when={f"requestParameters.PublicAccessBlockConfiguration.{setting}": "false"},
            variant=_kebab(setting), techniques=("T1562",))
      for setting in SETTINGS),
    Entry(S3, "DeleteAccountPublicAccessBlock", Meaning.WEAKENS_DEFENSES,
          "deleted the account's S3 public access block", {"endpoint": "requestParameters.Host"},
          (Command("s3control", "PutPublicAccessBlock", {
              "AccountId": Manual("this account's id"),
              "PublicAccessBlockConfiguration": BLOCK_ALL}, regional=False),),
          note=BLOCK_NOTE, techniques=("T1562",)),
    # -- S3 lifecycle and replication -------------------------------------------------------
    Entry(S3, "PutBucketLifecycle", Meaning.WEAKENS_DEFENSES,
          "set a lifecycle rule on bucket {bucket} that deletes objects after {days} day(s)",
          {**BUCKET, "days": f"{LIFECYCLE}.Expiration.Days"},
          (_s3("DeleteBucketLifecycle", {"Bucket": "{bucket}"}),),
          note="check whether it is a trail's or another log's bucket (aws cloudtrail "
               "describe-trails); if the bucket had lifecycle rules before this event, put "
               "them back with put-bucket-lifecycle-configuration instead",
          when={f"{LIFECYCLE}.Expiration.Days": PRESENT, f"{LIFECYCLE}.Status": "Enabled"},
          techniques=("aws.defense-evasion.cloudtrail-lifecycle-rule", "T1562.008")),
    Entry(S3, "PutBucketReplication", Meaning.EXFILTRATES,
          "set bucket {bucket} to replicate its objects to {destination}",
          {**BUCKET, "destination": f"{REPLICATION}.Bucket"},
          (_s3("DeleteBucketReplication", {"Bucket": "{bucket}"}),),
          note="objects already replicated stay at the destination; if the bucket replicated "
               "elsewhere before this event, put that configuration back instead",
          outside=(f"{REPLICATION}.Account", f"{REPLICATION}.Bucket"),
          techniques=("T1537",)),
    # -- EBS snapshots, AMIs and RDS snapshots ----------------------------------------------
    *_shares("EBS snapshot", "ModifySnapshotAttribute", "SnapshotId",
             attribute="createVolumePermission", public_member="GroupNames",
             technique="aws.exfiltration.ec2-share-ebs-snapshot"),
    *_shares("AMI", "ModifyImageAttribute", "ImageId", attribute="launchPermission",
             public_member="UserGroups", technique="aws.exfiltration.ec2-share-ami"),
    *_rds_shares("RDS snapshot", "ModifyDBSnapshotAttribute", "DBSnapshotIdentifier"),
    *_rds_shares("RDS cluster snapshot", "ModifyDBClusterSnapshotAttribute",
                 "DBClusterSnapshotIdentifier"),
)
