"""Resource policies and grants opened to the outside: Lambda functions and layers, ECR
repositories, KMS keys, SNS topics, SQS queues and Secrets Manager secrets."""

from __future__ import annotations

from responder.catalog.model import PRESENT, Command, Entry, Manual, Meaning

LAMBDA = "lambda.amazonaws.com"
ECR = "ecr.amazonaws.com"
KMS = "kms.amazonaws.com"
SNS = "sns.amazonaws.com"
SQS = "sqs.amazonaws.com"
SECRETS = "secretsmanager.amazonaws.com"

ENTRIES: tuple[Entry, ...] = (
    # -- Lambda -----------------------------------------------------------------------------
    *(Entry(LAMBDA, event, Meaning.GRANTS_OUTSIDE,
            "allowed {principal} {action} on Lambda function {function} in {region}",
            {"function": "requestParameters.functionName",
             "statement": "requestParameters.statementId",
             "principal": "requestParameters.principal",
             "action": "requestParameters.action"},
            (Command("lambda", "RemovePermission", {"FunctionName": "{function}",
                                                    "StatementId": "{statement}"}),),
            note="add --qualifier when the record names a version or alias",
            outside=("requestParameters.principal", "requestParameters.sourceAccount"),
            techniques=("aws.persistence.lambda-backdoor-function", "T1098"))
      for event in ("AddPermission20150331v2", "AddPermission20150331")),
    Entry(LAMBDA, "AddLayerVersionPermission20181031", Meaning.GRANTS_OUTSIDE,
          "shared version {version} of Lambda layer {layer} with {principal} in {region}",
          {"layer": "requestParameters.layerName",
           "version": "requestParameters.versionNumber",
           "statement": "requestParameters.statementId",
           "principal": "requestParameters.principal"},
          (Command("lambda", "RemoveLayerVersionPermission", {
              "LayerName": "{layer}", "VersionNumber": "{version}",
              "StatementId": "{statement}"}),),
          outside=("requestParameters.principal",), techniques=("T1098",)),
    Entry(LAMBDA, "CreateFunctionUrlConfig20211031", Meaning.CREATES_ACCESS,
          "gave Lambda function {function} a public URL {url} with no authentication in "
          "{region}",
          {"function": "requestParameters.functionName",
           "url": "responseElements.functionUrl"},
          (Command("lambda", "DeleteFunctionUrlConfig", {"FunctionName": "{function}"}),),
          note="add --qualifier when the record names an alias; anyone can call it once a "
               "policy statement allows lambda:InvokeFunctionUrl to * (AddPermission)",
          when={"requestParameters.authType": "NONE"}, techniques=("T1098",)),
    # -- ECR and KMS --------------------------------------------------------------------------
    Entry(ECR, "SetRepositoryPolicy", Meaning.GRANTS_OUTSIDE,
          "set the policy of ECR repository {repository} in {region}",
          {"repository": "requestParameters.repositoryName"},
          (Command("ecr", "DeleteRepositoryPolicy", {"repositoryName": "{repository}"}),),
          note="if the repository had a policy before this event, put that one back with "
               "set-repository-policy instead",
          outside=("requestParameters.policyText|policy",), techniques=("T1098",)),
    Entry(KMS, "PutKeyPolicy", Meaning.GRANTS_OUTSIDE,
          "replaced the policy of KMS key {key} in {region}",
          {"key": "requestParameters.keyId"},
          (Command("kms", "PutKeyPolicy", {
              "KeyId": "{key}", "PolicyName": "default",
              "Policy": Manual("file:// the key policy before this event")}),),
          outside=("requestParameters.policy|policy",), techniques=("T1098",)),
    Entry(KMS, "CreateGrant", Meaning.GRANTS_OUTSIDE,
          "granted {grantee} use of KMS key {key} in {region} (grant {grant})",
          {"key": "requestParameters.keyId", "grant": "responseElements.grantId",
           "grantee": "requestParameters.granteePrincipal"},
          (Command("kms", "RevokeGrant", {"KeyId": "{key}", "GrantId": "{grant}"}),),
          outside=("requestParameters.granteePrincipal",
                   "requestParameters.retiringPrincipal"),
          techniques=("T1098",)),
    # -- SNS and SQS --------------------------------------------------------------------------
    Entry(SNS, "AddPermission", Meaning.GRANTS_OUTSIDE,
          "allowed {accounts} {actions} on SNS topic {topic}",
          {"topic": "requestParameters.topicArn", "label": "requestParameters.label",
           "accounts": "requestParameters.aWSAccountId[]",
           "actions": "requestParameters.actionName[]"},
          (Command("sns", "RemovePermission", {"TopicArn": "{topic}", "Label": "{label}"}),),
          outside=("requestParameters.aWSAccountId[]",), techniques=("T1098",)),
    Entry(SNS, "SetTopicAttributes", Meaning.GRANTS_OUTSIDE,
          "replaced the policy of SNS topic {topic}", {"topic": "requestParameters.topicArn"},
          (Command("sns", "SetTopicAttributes", {
              "TopicArn": "{topic}", "AttributeName": "Policy",
              "AttributeValue": Manual("the topic policy before this event")}),),
          when={"requestParameters.attributeName": "Policy"},
          outside=("requestParameters.attributeValue|policy",), techniques=("T1098",)),
    Entry(SQS, "AddPermission", Meaning.GRANTS_OUTSIDE,
          "allowed {accounts} {actions} on SQS queue {queue}",
          {"queue": "requestParameters.queueUrl", "label": "requestParameters.label",
           "accounts": "requestParameters.aWSAccountIds[]",
           "actions": "requestParameters.actions[]"},
          (Command("sqs", "RemovePermission", {"QueueUrl": "{queue}", "Label": "{label}"}),),
          outside=("requestParameters.aWSAccountIds[]",), techniques=("T1098",)),
    Entry(SQS, "SetQueueAttributes", Meaning.GRANTS_OUTSIDE,
          "replaced the policy of SQS queue {queue}", {"queue": "requestParameters.queueUrl"},
          (Command("sqs", "SetQueueAttributes", {
              "QueueUrl": "{queue}",
              "Attributes": Manual("Policy= the queue policy before this event")}),),
          note="if the queue had no policy before this event, set Policy to an empty string",
          when={"requestParameters.attributes.Policy": PRESENT},
          outside=("requestParameters.attributes.Policy|policy",), techniques=("T1098",)),
    # -- Secrets Manager ----------------------------------------------------------------------
    Entry(SECRETS, "PutResourcePolicy", Meaning.GRANTS_OUTSIDE,
          "put a resource policy on secret {secret} in {region}",
          {"secret": "requestParameters.secretId"},
          (Command("secretsmanager", "DeleteResourcePolicy", {"SecretId": "{secret}"}),),
          note="if the secret had a resource policy before this event, put that one back "
               "instead; rotate the secret if an outside principal may have read it",
          outside=("requestParameters.resourcePolicy|policy",), techniques=("T1098",)),
)
