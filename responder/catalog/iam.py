"""IAM and STS: the doors an attacker opens on identities (keys, users, roles,
passwords, sessions) and the policies it widens."""

from __future__ import annotations

from responder.catalog.model import PRESENT, Command, Entry, Manual, Meaning, Response

IAM = "iam.amazonaws.com"
STS = "sts.amazonaws.com"
_G = {"regional": False}
"""IAM is global: its commands take no --region."""
_DENY_ALL = ('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*",'
             '"Resource":"*"}]}')
"""What contain-attacker puts on a principal the attacker created (responder-quarantine)."""

ENTRIES: tuple[Entry, ...] = (
    # -- what contain-attacker shuts itself ------------------------------------------------
    Entry(IAM, "CreateAccessKey", Meaning.CREATES_ACCESS,
          "created access key {key} for user {user}",
          {"key": "responseElements.accessKey.accessKeyId",
           "user": "responseElements.accessKey.userName"},
          (Command("iam", "UpdateAccessKey", {"UserName": "{user}", "AccessKeyId": "{key}",
                                              "Status": "Inactive"}, **_G),),
          response=Response.NEUTRALISE, handler="key",
          techniques=("aws.persistence.iam-backdoor-user", "T1098.001")),
    Entry(IAM, "CreateUser", Meaning.CREATES_ACCESS, "created user {user}",
          {"user": "requestParameters.userName"},
          (Command("iam", "PutUserPolicy", {
              "UserName": "{user}", "PolicyName": "responder-quarantine",
              "PolicyDocument": _DENY_ALL}, **_G),),
          response=Response.NEUTRALISE, handler="user",
          techniques=("aws.persistence.iam-create-admin-user", "T1136.003")),
    Entry(IAM, "CreateRole", Meaning.CREATES_ACCESS, "created role {role}",
          {"role": "requestParameters.roleName"},
          (Command("iam", "PutRolePolicy", {
              "RoleName": "{role}", "PolicyName": "responder-quarantine",
              "PolicyDocument": _DENY_ALL}, **_G),),
          response=Response.NEUTRALISE, handler="role",
          outside=("requestParameters.assumeRolePolicyDocument|policy",),
          techniques=("aws.persistence.iam-create-backdoor-role", "T1136.003")),
    *(Entry(STS, name, Meaning.CREATES_ACCESS, "assumed role {role} (session {session})",
            {"role": "requestParameters.roleArn",
             "session": "responseElements.assumedRoleUser.assumedRoleId"},
            (Command("iam", "PutRolePolicy", {
                "RoleName": Manual("the role's name"),
                "PolicyName": "responder-revoke-attacker-sessions",
                "PolicyDocument": Manual("a deny naming the session's aws:userid")}, **_G),),
            response=Response.NEUTRALISE, handler="session", techniques=("T1078.004",))
      for name in ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity")),
    *(Entry(STS, name, Meaning.CREATES_ACCESS,
            "minted temporary credentials {key} from the leaked key",
            {"key": "responseElements.credentials.accessKeyId"},
            (Command("iam", "PutUserPolicy", {
                "UserName": Manual("the leaked key's user"),
                "PolicyName": "responder-revoke-older-sessions",
                "PolicyDocument": Manual("a deny of tokens issued before now")}, **_G),),
            note="the responder's session cutoff on the user already denies them",
            response=Response.NEUTRALISE, handler="cutoff",
            techniques=(("aws.persistence.sts-federation-token", "T1550.001")
                        if name == "GetFederationToken" else ("T1550.001",)))
      for name in ("GetSessionToken", "GetFederationToken")),
    Entry(IAM, "CreateLoginProfile", Meaning.CREATES_ACCESS,
          "set a console password on user {user}", {"user": "requestParameters.userName"},
          (Command("iam", "DeleteLoginProfile", {"UserName": "{user}"}, **_G),),
          response=Response.NEUTRALISE, handler="login",
          techniques=("aws.persistence.iam-create-user-login-profile", "T1098")),
    Entry(IAM, "UpdateLoginProfile", Meaning.CREATES_ACCESS,
          "changed the console password of user {user}",
          {"user": "requestParameters.userName"},
          (Command("iam", "DeleteLoginProfile", {"UserName": "{user}"}, **_G),),
          note="or reset the password with update-login-profile and tell its owner",
          response=Response.NEUTRALISE, handler="login",
          techniques=("aws.privilege-escalation.iam-update-user-login-profile", "T1098")),
    # -- listed for a human ------------------------------------------------------------------
    *(Entry(IAM, f"Attach{kind}Policy", Meaning.WIDENS_POLICY,
            f"attached managed policy {{policy}} to {kind.lower()} {{who}}",
            {"who": f"requestParameters.{kind.lower()}Name",
             "policy": "requestParameters.policyArn"},
            (Command("iam", f"Detach{kind}Policy", {f"{kind}Name": "{who}",
                                                    "PolicyArn": "{policy}"}, **_G),),
            techniques=("T1098.003",))
      for kind in ("User", "Role", "Group")),
    *(Entry(IAM, f"Put{kind}Policy", Meaning.WIDENS_POLICY,
            f"put inline policy {{policy}} on {kind.lower()} {{who}}",
            {"who": f"requestParameters.{kind.lower()}Name",
             "policy": "requestParameters.policyName"},
            (Command("iam", f"Delete{kind}Policy", {f"{kind}Name": "{who}",
                                                    "PolicyName": "{policy}"}, **_G),),
            note="if it replaced an earlier policy of that name, put that one back instead",
            techniques=("T1098.003",))
      for kind in ("User", "Role", "Group")),
    Entry(IAM, "CreatePolicyVersion", Meaning.WIDENS_POLICY,
          "created version {version} of policy {policy} and made it the default",
          {"policy": "requestParameters.policyArn",
           "version": "responseElements.policyVersion.versionId"},
          (Command("iam", "SetDefaultPolicyVersion", {
              "PolicyArn": "{policy}", "VersionId": Manual("the previous default version")},
              **_G),
           Command("iam", "DeletePolicyVersion", {"PolicyArn": "{policy}",
                                                  "VersionId": "{version}"}, **_G)),
          when={"requestParameters.setAsDefault": "true"}, variant="default",
          techniques=("T1098.003",)),
    Entry(IAM, "CreatePolicyVersion", Meaning.WIDENS_POLICY,
          "created version {version} of policy {policy}",
          {"policy": "requestParameters.policyArn",
           "version": "responseElements.policyVersion.versionId"},
          (Command("iam", "DeletePolicyVersion", {"PolicyArn": "{policy}",
                                                  "VersionId": "{version}"}, **_G),),
          techniques=("T1098.003",)),
    Entry(IAM, "UpdateAssumeRolePolicy", Meaning.GRANTS_OUTSIDE,
          "changed who may assume role {role}", {"role": "requestParameters.roleName"},
          (Command("iam", "UpdateAssumeRolePolicy", {
              "RoleName": "{role}",
              "PolicyDocument": Manual("file:// the trust policy before this event")},
              **_G),),
          outside=("requestParameters.policyDocument|policy",),
          techniques=("aws.persistence.iam-backdoor-role", "T1098.003")),
    Entry(IAM, "SetDefaultPolicyVersion", Meaning.WIDENS_POLICY,
          "made version {version} the default of policy {policy}",
          {"policy": "requestParameters.policyArn", "version": "requestParameters.versionId"},
          (Command("iam", "SetDefaultPolicyVersion", {
              "PolicyArn": "{policy}", "VersionId": Manual("the previous default version")},
              **_G),),
          techniques=("T1098.003",)),
    Entry(IAM, "AddUserToGroup", Meaning.WIDENS_POLICY, "added user {user} to group {group}",
          {"group": "requestParameters.groupName", "user": "requestParameters.userName"},
          (Command("iam", "RemoveUserFromGroup", {"GroupName": "{group}", "UserName": "{user}"},
                   **_G),),
          techniques=("T1098.003",)),
    *(Entry(IAM, f"Delete{kind}PermissionsBoundary", Meaning.WIDENS_POLICY,
            f"removed the permissions boundary of {kind.lower()} {{who}}",
            {"who": f"requestParameters.{kind.lower()}Name"},
            (Command("iam", f"Put{kind}PermissionsBoundary", {
                f"{kind}Name": "{who}",
                "PermissionsBoundary": Manual("the boundary policy ARN before this event")},
                **_G),),
            techniques=("T1098.003",))
      for kind in ("User", "Role")),
    *(Entry(IAM, f"Put{kind}PermissionsBoundary", Meaning.WIDENS_POLICY,
            f"set permissions boundary {{boundary}} on {kind.lower()} {{who}}",
            {"who": f"requestParameters.{kind.lower()}Name",
             "boundary": "requestParameters.permissionsBoundary"},
            (Command("iam", f"Put{kind}PermissionsBoundary", {
                f"{kind}Name": "{who}",
                "PermissionsBoundary": Manual("the boundary policy ARN before this event")},
                **_G),),
            note=f"if it had no boundary before, delete-{kind.lower()}-permissions-boundary "
                 "instead; a boundary that only narrows its permissions can stay",
            techniques=("T1098.003",))
      for kind in ("User", "Role")),
    Entry(IAM, "AddRoleToInstanceProfile", Meaning.WIDENS_POLICY,
          "added role {role} to instance profile {profile}",
          {"profile": "requestParameters.instanceProfileName",
           "role": "requestParameters.roleName"},
          (Command("iam", "RemoveRoleFromInstanceProfile", {
              "InstanceProfileName": "{profile}", "RoleName": "{role}"}, **_G),),
          note="instances already running with the profile keep the role's credentials "
               "until they expire",
          techniques=("T1098.003",)),
    Entry(IAM, "UpdateRole", Meaning.WIDENS_POLICY,
          "set the maximum session duration of role {role} to {seconds} seconds",
          {"role": "requestParameters.roleName",
           "seconds": "requestParameters.maxSessionDuration"},
          (Command("iam", "UpdateRole", {
              "RoleName": "{role}",
              "MaxSessionDuration": Manual("the previous maximum, 3600 by default")}, **_G),),
          when={"requestParameters.maxSessionDuration": PRESENT}, variant="duration",
          techniques=("T1098",)),
    # -- other credentials on a user: each is another way in -------------------------------
    Entry(IAM, "UpdateAccessKey", Meaning.CREATES_ACCESS,
          "reactivated access key {key} of user {user}",
          {"key": "requestParameters.accessKeyId", "user": "requestParameters.userName"},
          (Command("iam", "UpdateAccessKey", {"UserName": "{user}", "AccessKeyId": "{key}",
                                              "Status": "Inactive"}, **_G),),
          when={"requestParameters.status": "Active"}, variant="active",
          techniques=("T1098.001",)),
    Entry(IAM, "UploadSSHPublicKey", Meaning.CREATES_ACCESS,
          "uploaded CodeCommit SSH public key {key} for user {user}",
          {"key": "responseElements.sSHPublicKey.sSHPublicKeyId",
           "user": "responseElements.sSHPublicKey.userName"},
          (Command("iam", "UpdateSSHPublicKey", {"UserName": "{user}", "SSHPublicKeyId": "{key}",
                                                 "Status": "Inactive"}, **_G),),
          techniques=("T1098.001",)),
    Entry(IAM, "UploadSigningCertificate", Meaning.CREATES_ACCESS,
          "uploaded signing certificate {certificate} for user {user}",
          {"certificate": "responseElements.certificate.certificateId",
           "user": "responseElements.certificate.userName"},
          (Command("iam", "UpdateSigningCertificate", {
              "UserName": "{user}", "CertificateId": "{certificate}", "Status": "Inactive"},
              **_G),),
          techniques=("T1098.001",)),
    Entry(IAM, "CreateServiceSpecificCredential", Meaning.CREATES_ACCESS,
          "created {service} credential {credential} for user {user}",
          {"credential": "responseElements.serviceSpecificCredential."
                         "serviceSpecificCredentialId",
           "user": "responseElements.serviceSpecificCredential.userName",
           "service": "responseElements.serviceSpecificCredential.serviceName"},
          (Command("iam", "UpdateServiceSpecificCredential", {
              "UserName": "{user}", "ServiceSpecificCredentialId": "{credential}",
              "Status": "Inactive"}, **_G),),
          techniques=("T1098.001",)),
    # -- MFA: an attacker's device on a user, or the owner's taken away ----------------------
    Entry(IAM, "CreateVirtualMFADevice", Meaning.CREATES_ACCESS,
          "created virtual MFA device {device}",
          {"device": "responseElements.virtualMFADevice.serialNumber"},
          (Command("iam", "DeleteVirtualMFADevice", {"SerialNumber": "{device}"}, **_G),),
          note="if it is enabled on a user, deactivate-mfa-device first",
          techniques=("T1098.005",)),
    Entry(IAM, "EnableMFADevice", Meaning.CREATES_ACCESS,
          "registered MFA device {device} on user {user}",
          {"user": "requestParameters.userName", "device": "requestParameters.serialNumber"},
          (Command("iam", "DeactivateMFADevice", {"UserName": "{user}",
                                                  "SerialNumber": "{device}"}, **_G),),
          note="unless the device is its owner's own; an attacker's virtual device can "
               "then go with delete-virtual-mfa-device",
          techniques=("T1098.005", "T1556.006")),
    Entry(IAM, "DeactivateMFADevice", Meaning.WEAKENS_DEFENSES,
          "deactivated MFA device {device} of user {user}",
          {"user": "requestParameters.userName", "device": "requestParameters.serialNumber"},
          (Command("iam", "EnableMFADevice", {
              "UserName": "{user}", "SerialNumber": "{device}",
              "AuthenticationCode1": Manual("a code from the device"),
              "AuthenticationCode2": Manual("the next code")}, **_G),),
          note="the device's owner reads the two codes; a device since deleted needs a new one",
          techniques=("T1556.006",)),
    Entry(IAM, "DeleteVirtualMFADevice", Meaning.WEAKENS_DEFENSES,
          "deleted virtual MFA device {device}",
          {"device": "requestParameters.serialNumber"},
          note="a deleted virtual MFA device cannot come back: its owner registers a new one "
               "(create-virtual-mfa-device, then enable-mfa-device)",
          techniques=("T1556.006",)),
)
