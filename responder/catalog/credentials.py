"""Secrets Manager, SSM Parameter Store, KMS and EC2 passwords: credentials the attacker
read. Nothing to undo; the command is the one that rotates what was read (a new value
given by hand where the service cannot make one)."""

from __future__ import annotations

from responder.catalog.model import ABSENT, PRESENT, Command, Entry, Manual, Meaning

SECRETS = "secretsmanager.amazonaws.com"
SSM = "ssm.amazonaws.com"
KMS = "kms.amazonaws.com"
EC2 = "ec2.amazonaws.com"
_ROTATION = ("rotation needs a rotation function on the secret; without one, change "
             "the credential where it is used, then store it with put-secret-value")
_PARAMETER_NOTE = "change the credential where it is used first, then store the new value"
_NEW_VALUE = Manual("the new value")
_DECRYPTED = {"requestParameters.withDecryption": "true"}
_SSM_TECHNIQUES = ("aws.credential-access.ssm-retrieve-securestring-parameters", "T1555.006")


def _put(name: str | Manual) -> Command:
    """The SecureString parameter overwritten with a new value."""
    return Command("ssm", "PutParameter", {"Name": name, "Overwrite": True,
                                           "Type": "SecureString", "Value": _NEW_VALUE})


ENTRIES: tuple[Entry, ...] = (
    # -- Secrets Manager ---------------------------------------------------------------------
    Entry(SECRETS, "GetSecretValue", Meaning.READS_CREDENTIALS,
          "read the value of secret {secret} in {region}",
          {"secret": "requestParameters.secretId"},
          (Command("secretsmanager", "RotateSecret", {"SecretId": "{secret}"}),),
          note=_ROTATION, credential="secret",
          techniques=("aws.credential-access.secretsmanager-retrieve-secrets", "T1555.006")),
    Entry(SECRETS, "BatchGetSecretValue", Meaning.READS_CREDENTIALS,
          "read the values of secrets {secrets} in {region}",
          {"secrets": "requestParameters.secretIdList[]"},
          (Command("secretsmanager", "RotateSecret", {"SecretId": "{secrets}"}),),
          note=f"one rotate-secret per secret; {_ROTATION}", credential="secret",
          when={"requestParameters.secretIdList[]": PRESENT}, variant="list",
          techniques=("aws.credential-access.secretsmanager-batch-retrieve-secrets",
                      "T1555.006")),
    Entry(SECRETS, "BatchGetSecretValue", Meaning.READS_CREDENTIALS,
          "read the values of the secrets matching filter {filter} in {region}",
          {"filter": "requestParameters.filters[].values[]",
           "key": "requestParameters.filters[].key"},
          (Command("secretsmanager", "RotateSecret", {
              "SecretId": Manual("each secret the filter matched")}),),
          note="Secrets Manager also writes a GetSecretValue record for each secret it "
               f"read, listed with its own command; {_ROTATION}", credential="secret",
          techniques=("aws.credential-access.secretsmanager-batch-retrieve-secrets",
                      "T1555.006")),
    # -- SSM Parameter Store: only reads that decrypt ----------------------------------------
    Entry(SSM, "GetParameter", Meaning.READS_CREDENTIALS,
          "read the decrypted value of parameter {parameter} in {region}",
          {"parameter": "requestParameters.name"}, (_put("{parameter}"),),
          note=_PARAMETER_NOTE, when=_DECRYPTED, credential="parameter",
          variant="decrypted", techniques=_SSM_TECHNIQUES),
    Entry(SSM, "GetParameters", Meaning.READS_CREDENTIALS,
          "read the decrypted values of parameters {parameters} in {region}",
          {"parameters": "requestParameters.names[]"}, (_put("{parameters}"),),
          note=f"one put-parameter per SecureString parameter; {_PARAMETER_NOTE}",
          when=_DECRYPTED, credential="parameter", variant="decrypted",
          techniques=_SSM_TECHNIQUES),
    Entry(SSM, "GetParametersByPath", Meaning.READS_CREDENTIALS,
          "read the decrypted values of the parameters under {path} in {region}",
          {"path": "requestParameters.path", "recursive": "requestParameters.recursive"},
          (_put(Manual("each SecureString parameter under the path")),),
          note="list them with get-parameters-by-path (add --recursive if the attacker "
               f"did) and rotate each; {_PARAMETER_NOTE}",
          when=_DECRYPTED, credential="parameter", variant="decrypted",
          techniques=_SSM_TECHNIQUES),
    # -- KMS ---------------------------------------------------------------------------------
    Entry(KMS, "Decrypt", Meaning.READS_CREDENTIALS,
          "decrypted data with KMS key {key} in {region}",
          {"key": "resources[].ARN"},
          (Command("kms", "RotateKeyOnDemand", {"KeyId": "{key}"}),),
          note="rotating keeps the old key material, so what was decrypted stays exposed: "
               "re-encrypt and rotate what the ciphertext protected (its encryption context "
               "names it)",
          when={"userIdentity.invokedBy": ABSENT},
          credential="kms-key"),
    # -- EC2 Windows passwords ---------------------------------------------------------------
    Entry(EC2, "GetPasswordData", Meaning.READS_CREDENTIALS,
          "read the encrypted administrator password of instance {instance} in {region}",
          {"instance": "requestParameters.instanceId"},
          (Command("ssm", "StartAutomationExecution", {
              "DocumentName": "AWSSupport-ResetAccess",
              "Parameters": "InstanceId={instance}"}),),
          note="the password is encrypted to the instance's key pair, so it is exposed if "
               "the attacker holds that private key; the automation stops and restarts the "
               "instance to reset it, or log on and change the password by hand",
          credential="instance-password",
          techniques=("aws.credential-access.ec2-get-password-data", "T1552")),
)
