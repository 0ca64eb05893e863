"""Federation and the organization: identity providers and Roles Anywhere trust anchors
that let an outside identity in, and the account slipping out of its organization's hold
(leaving it, or the service control policies that bound it detached or disabled)."""

from __future__ import annotations

from responder.catalog.model import PRESENT, Command, Entry, Manual, Meaning

IAM = "iam.amazonaws.com"
ROLESANYWHERE = "rolesanywhere.amazonaws.com"
ORGANIZATIONS = "organizations.amazonaws.com"
_G = {"regional": False}
"""IAM and Organizations are global: their commands take no --region."""

ENTRIES: tuple[Entry, ...] = (
    # -- identity providers: tokens of an outside issuer become sessions here ---------------
    Entry(IAM, "CreateSAMLProvider", Meaning.CREATES_ACCESS,
          "created SAML identity provider {provider}",
          {"provider": "responseElements.sAMLProviderArn"},
          (Command("iam", "DeleteSAMLProvider", {"SAMLProviderArn": "{provider}"}, **_G),),
          note="first check that no role trusts it for a legitimate sign-in",
          techniques=("T1484.002",)),
    Entry(IAM, "UpdateSAMLProvider", Meaning.CREATES_ACCESS,
          "replaced the metadata of SAML identity provider {provider}",
          {"provider": "requestParameters.sAMLProviderArn"},
          (Command("iam", "UpdateSAMLProvider", {
              "SAMLProviderArn": "{provider}",
              "SAMLMetadataDocument": Manual("the metadata document before this event")},
              **_G),),
          techniques=("T1484.002",)),
    Entry(IAM, "CreateOpenIDConnectProvider", Meaning.CREATES_ACCESS,
          "created OpenID Connect provider {provider} for {url}",
          {"provider": "responseElements.openIDConnectProviderArn",
           "url": "requestParameters.url"},
          (Command("iam", "DeleteOpenIDConnectProvider", {
              "OpenIDConnectProviderArn": "{provider}"}, **_G),),
          note="first check that no role trusts it for a legitimate workload such as CI",
          outside=("requestParameters.url",), techniques=("T1484.002",)),
    Entry(IAM, "AddClientIDToOpenIDConnectProvider", Meaning.CREATES_ACCESS,
          "added client ID {client} to OpenID Connect provider {provider}",
          {"provider": "requestParameters.openIDConnectProviderArn",
           "client": "requestParameters.clientID"},
          (Command("iam", "RemoveClientIDFromOpenIDConnectProvider", {
              "OpenIDConnectProviderArn": "{provider}", "ClientID": "{client}"}, **_G),),
          outside=("requestParameters.clientID",), techniques=("T1484.002",)),
    Entry(IAM, "UpdateOpenIDConnectProviderThumbprint", Meaning.CREATES_ACCESS,
          "replaced the certificate thumbprints of OpenID Connect provider {provider}",
          {"provider": "requestParameters.openIDConnectProviderArn"},
          (Command("iam", "UpdateOpenIDConnectProviderThumbprint", {
              "OpenIDConnectProviderArn": "{provider}",
              "ThumbprintList": Manual("the thumbprints before this event")}, **_G),),
          techniques=("T1484.002",)),
    # -- IAM Roles Anywhere: certificates of an outside CA become role sessions ------------
    Entry(ROLESANYWHERE, "CreateTrustAnchor", Meaning.CREATES_ACCESS,
          "created Roles Anywhere trust anchor {anchor} ({name}) in {region}",
          {"anchor": "responseElements.trustAnchor.trustAnchorId",
           "name": "responseElements.trustAnchor.name"},
          (Command("rolesanywhere", "DisableTrustAnchor", {"trustAnchorId": "{anchor}"}),),
          techniques=("aws.persistence.rolesanywhere-create-trust-anchor", "T1098")),
    Entry(ROLESANYWHERE, "UpdateTrustAnchor", Meaning.CREATES_ACCESS,
          "replaced the certificate source of Roles Anywhere trust anchor {anchor} in "
          "{region}",
          {"anchor": "requestParameters.trustAnchorId"},
          (Command("rolesanywhere", "UpdateTrustAnchor", {
              "trustAnchorId": "{anchor}",
              "source": Manual("the certificate source before this event")}),),
          note="or disable-trust-anchor until the source is restored",
          when={"requestParameters.source.sourceType": PRESENT}, variant="source",
          techniques=("aws.persistence.rolesanywhere-create-trust-anchor", "T1098")),
    Entry(ROLESANYWHERE, "EnableTrustAnchor", Meaning.CREATES_ACCESS,
          "enabled Roles Anywhere trust anchor {anchor} in {region}",
          {"anchor": "requestParameters.trustAnchorId"},
          (Command("rolesanywhere", "DisableTrustAnchor", {"trustAnchorId": "{anchor}"}),),
          techniques=("aws.persistence.rolesanywhere-create-trust-anchor", "T1098")),
    Entry(ROLESANYWHERE, "CreateProfile", Meaning.CREATES_ACCESS,
          "created Roles Anywhere profile {profile} for roles {roles} in {region}",
          {"profile": "responseElements.profile.profileId",
           "roles": "requestParameters.roleArns[]"},
          (Command("rolesanywhere", "DisableProfile", {"profileId": "{profile}"}),),
          techniques=("aws.persistence.rolesanywhere-create-trust-anchor", "T1098")),
    # -- the organization's hold -------------------------------------------------------------
    Entry(ORGANIZATIONS, "LeaveOrganization", Meaning.WEAKENS_DEFENSES,
          "left the AWS organization: its trail, SCPs and delegated security services "
          "no longer cover this account",
          note="the management account invites it back (invite-account-to-organization "
               "--target Id=ITS_ACCOUNT_ID,Type=ACCOUNT) and it accepts (accept-handshake "
               "--handshake-id with the invitation's id); then check that the organization "
               "trail, SCPs and delegated administrators cover it again",
          techniques=("aws.defense-evasion.organizations-leave", "T1666")),
    Entry(ORGANIZATIONS, "DetachPolicy", Meaning.WIDENS_POLICY,
          "detached organization policy {policy} from {target}",
          {"policy": "requestParameters.policyId", "target": "requestParameters.targetId"},
          (Command("organizations", "AttachPolicy", {"PolicyId": "{policy}",
                                                     "TargetId": "{target}"}, **_G),),
          note="a service control policy detached lifts its guardrails at once",
          techniques=("T1484",)),
    Entry(ORGANIZATIONS, "DisablePolicyType", Meaning.WIDENS_POLICY,
          "disabled {type} policies in organization root {root}",
          {"root": "requestParameters.rootId", "type": "requestParameters.policyType"},
          (Command("organizations", "EnablePolicyType", {"RootId": "{root}",
                                                         "PolicyType": "{type}"}, **_G),
           Command("organizations", "AttachPolicy", {
               "PolicyId": Manual("each policy of that type attached before"),
               "TargetId": Manual("its root, OU or account")}, **_G)),
          note="disabling a policy type detaches every policy of it; each must be "
               "attached again",
          techniques=("T1484",)),
)
