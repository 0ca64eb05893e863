"""IAM and STS: the doors an attacker opens on identities (keys, users, roles,
passwords, sessions) and the policies it widens."""

from __future__ import annotations

from responder.catalog.model import Command, Entry, Manual, Meaning, Response

IAM = "iam.amazonaws.com"
STS = "sts.amazonaws.com"
_G = {"regional": False}
"""IAM is global: its commands take no --region."""

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
              "PolicyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",'
                                '"Action":"*","Resource":"*"}]}'}, **_G),),
          response=Response.NEUTRALISE, handler="user",
          techniques=("aws.persistence.iam-create-admin-user", "T1136.003")),
    Entry(IAM, "CreateRole", Meaning.CREATES_ACCESS, "created role {role}",
          {"role": "requestParameters.roleName"},
          (Command("iam", "PutRolePolicy", {
              "RoleName": "{role}", "PolicyName": "responder-quarantine",
              "PolicyDocument": '{"Version":"2012-10-17","Statement":[{"Effect":"Deny",'
                                '"Action":"*","Resource":"*"}]}'}, **_G),),
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
)
