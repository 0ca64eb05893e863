"""EC2, EC2 Instance Connect, SSM and Lambda: what an attacker starts or changes to run
code of its own (instances, opened ports, key pairs, user data, commands, sessions,
functions, layers). Listed for a human with the command that stops or undoes it."""

from __future__ import annotations

from responder.catalog.model import PRESENT, Command, Entry, Manual, Meaning

EC2 = "ec2.amazonaws.com"
CONNECT = "ec2-instance-connect.amazonaws.com"
SSM = "ssm.amazonaws.com"
LAMBDA = "lambda.amazonaws.com"
SAGEMAKER = "sagemaker.amazonaws.com"
_ON_INSTANCE = ("look at what ran on the instance (its shell history, auth and cloud-init "
                "logs, new users and keys) and treat it as compromised")

ENTRIES: tuple[Entry, ...] = (
    # -- EC2: instances, ports, keys, user data, the serial console -------------------------
    Entry(EC2, "RunInstances", Meaning.CREATES_ACCESS,
          "launched instances {instances} ({type}) in {region}",
          {"instances": "responseElements.instancesSet.items[].instanceId",
           "type": "responseElements.instancesSet.items[].instanceType",
           "profile": "responseElements.instancesSet.items[].iamInstanceProfile.arn"},
          (Command("ec2", "StopInstances", {"InstanceIds": "{instances}"}),),
          note="terminate them (terminate-instances) once their volumes are kept as "
               "evidence; an instance profile they carry gives the attacker its role's "
               "credentials",
          techniques=("aws.execution.ec2-launch-unusual-instances", "T1578.002", "T1496")),
    Entry(EC2, "AuthorizeSecurityGroupIngress", Meaning.CREATES_ACCESS,
          "added ingress rules {rules} to security group {group} in {region}",
          {"group": "responseElements.securityGroupRuleSet.items[].groupId",
           "rules": "responseElements.securityGroupRuleSet.items[].securityGroupRuleId",
           "cidr": "responseElements.securityGroupRuleSet.items[].cidrIpv4"},
          (Command("ec2", "RevokeSecurityGroupIngress", {
              "GroupId": "{group}", "SecurityGroupRuleIds": "{rules}"}),),
          outside=("responseElements.securityGroupRuleSet.items[].referencedGroupInfo"
                   ".userId",),
          techniques=("aws.exfiltration.ec2-security-group-open-port-22-ingress",
                      "T1562.007")),
    Entry(EC2, "ImportKeyPair", Meaning.CREATES_ACCESS,
          "imported key pair {key} in {region}",
          {"key": "requestParameters.keyName", "id": "responseElements.keyPairId"},
          (Command("ec2", "DeleteKeyPair", {"KeyName": "{key}"}),),
          note="instances launched with it keep the key in authorized_keys: remove it there",
          techniques=("T1098.004",)),
    Entry(EC2, "CreateKeyPair", Meaning.CREATES_ACCESS,
          "created key pair {key} in {region}",
          {"key": "responseElements.keyName", "id": "responseElements.keyPairId"},
          (Command("ec2", "DeleteKeyPair", {"KeyName": "{key}"}),),
          note="instances launched with it keep the key in authorized_keys: remove it there",
          techniques=("T1098.004",)),
    Entry(EC2, "ModifyInstanceAttribute", Meaning.CREATES_ACCESS,
          "replaced the user data of instance {instance} in {region}",
          {"instance": "requestParameters.instanceId"},
          (Command("ec2", "ModifyInstanceAttribute", {
              "InstanceId": "{instance}",
              "UserData": Manual("Value= the base64 user data before this event")}),),
          note="the instance must be stopped to change it; the attacker's user data can "
               f"run as root at each start after this event: {_ON_INSTANCE}",
          when={"requestParameters.userData": PRESENT}, variant="userdata",
          techniques=("aws.execution.ec2-user-data", "T1059")),
    Entry(EC2, "EnableSerialConsoleAccess", Meaning.CREATES_ACCESS,
          "enabled EC2 serial console access for the account in {region}",
          {"enabled": "responseElements.EnableSerialConsoleAccessResponse"
                      ".serialConsoleAccessEnabled"},
          (Command("ec2", "DisableSerialConsoleAccess"),),
          note="unless the account used the serial console before",
          techniques=("aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
                      "T1021")),
    # -- EC2 Instance Connect: a key pushed for 60 seconds -----------------------------------
    Entry(CONNECT, "SendSSHPublicKey", Meaning.CREATES_ACCESS,
          "pushed an SSH key for {user} to instance {instance} in {region}",
          {"instance": "requestParameters.instanceId",
           "user": "requestParameters.instanceOSUser"},
          note=f"the key lived 60 seconds, nothing is left to undo: {_ON_INSTANCE}",
          techniques=("aws.lateral-movement.ec2-instance-connect", "T1021.004")),
    Entry(CONNECT, "SendSerialConsoleSSHPublicKey", Meaning.CREATES_ACCESS,
          "pushed an SSH key to the serial console of instance {instance} in {region}",
          {"instance": "requestParameters.instanceId",
           "port": "requestParameters.serialPort"},
          note=f"the key lived 60 seconds, nothing is left to undo: {_ON_INSTANCE}",
          techniques=("aws.lateral-movement.ec2-serial-console-send-ssh-public-key",
                      "T1021")),
    # -- SSM: commands and sessions on instances --------------------------------------------
    Entry(SSM, "SendCommand", Meaning.CREATES_ACCESS,
          "ran SSM command {command} ({document}) in {region}",
          {"command": "responseElements.command.commandId",
           "document": "requestParameters.documentName",
           "instances": "requestParameters.instanceIds[]"},
          (Command("ssm", "CancelCommand", {"CommandId": "{command}"}),),
          note="what already ran stays done: read its output (list-command-invocations "
               "--details) and treat the instances it ran on as compromised",
          techniques=("aws.execution.ssm-send-command",
                      "aws.credential-access.ec2-steal-instance-credentials", "T1651")),
    Entry(SSM, "StartSession", Meaning.CREATES_ACCESS,
          "started SSM session {session} on {target} in {region}",
          {"session": "responseElements.sessionId", "target": "requestParameters.target"},
          (Command("ssm", "TerminateSession", {"SessionId": "{session}"}),),
          note="what already ran stays done: read the session's log if session logging is "
               "on, and treat the target as compromised",
          techniques=("aws.execution.ssm-start-session", "T1651")),
    # -- Lambda: functions, code, configuration, layers -------------------------------------
    Entry(LAMBDA, "CreateFunction20150331", Meaning.CREATES_ACCESS,
          "created Lambda function {function} running as {role} in {region}",
          {"function": "responseElements.functionName", "role": "requestParameters.role"},
          (Command("lambda", "DeleteFunction", {"FunctionName": "{function}"}),),
          note="keep its code as evidence first (get-function gives a link to it), and "
               "look for the triggers and permissions it was given",
          techniques=("T1648",)),
    Entry(LAMBDA, "UpdateFunctionCode20150331v2", Meaning.CREATES_ACCESS,
          "replaced the code of Lambda function {function} in {region}",
          {"function": "responseElements.functionName",
           "sha256": "responseElements.codeSha256"},
          (Command("lambda", "UpdateFunctionCode", {
              "FunctionName": "{function}",
              "S3Bucket": Manual("the bucket of the code before this event"),
              "S3Key": Manual("its key")}),),
          note="the code before is in the function's previous published version or your "
               "deployment; keep the attacker's code (get-function) as evidence first",
          techniques=("aws.persistence.lambda-overwrite-code", "T1648")),
    Entry(LAMBDA, "UpdateFunctionConfiguration20150331v2", Meaning.CREATES_ACCESS,
          "set the layers of Lambda function {function} to {layers} in {region}",
          {"function": "responseElements.functionName",
           "layers": "requestParameters.layers[]"},
          (Command("lambda", "UpdateFunctionConfiguration", {
              "FunctionName": "{function}",
              "Layers": Manual("the layer version ARNs before this event")}),),
          note="if the same request changed the role or handler, put those back too",
          when={"requestParameters.layers[]": PRESENT}, variant="layers",
          techniques=("aws.persistence.lambda-layer-extension", "T1648")),
    Entry(LAMBDA, "UpdateFunctionConfiguration20150331v2", Meaning.CREATES_ACCESS,
          "set the execution role of Lambda function {function} to {role} in {region}",
          {"function": "responseElements.functionName", "role": "requestParameters.role"},
          (Command("lambda", "UpdateFunctionConfiguration", {
              "FunctionName": "{function}",
              "Role": Manual("the role ARN before this event")}),),
          when={"requestParameters.role": PRESENT}, variant="role",
          techniques=("T1648",)),
    Entry(LAMBDA, "UpdateFunctionConfiguration20150331v2", Meaning.CREATES_ACCESS,
          "changed the configuration of Lambda function {function} in {region}",
          {"function": "responseElements.functionName"},
          (Command("lambda", "UpdateFunctionConfiguration", {
              "FunctionName": "{function}",
              "Environment": Manual("Variables={...} as before this event")}),),
          note="CloudTrail leaves environment variables out of the record: compare the "
               "function with its previous published version or your deployment and put "
               "back whatever else changed (handler, runtime, VPC) the same way",
          techniques=("T1648",)),
    Entry(LAMBDA, "PublishLayerVersion20181031", Meaning.CREATES_ACCESS,
          "published version {version} of Lambda layer {layer} in {region}",
          {"layer": "requestParameters.layerName", "version": "responseElements.version",
           "arn": "responseElements.layerVersionArn"},
          (Command("lambda", "DeleteLayerVersion", {"LayerName": "{layer}",
                                                    "VersionNumber": "{version}"}),),
          note="functions already using it keep their copy: look for the "
               "UpdateFunctionConfiguration events that attached it",
          techniques=("aws.persistence.lambda-layer-extension", "T1648")),
    # -- SageMaker: a lifecycle script runs as the notebook's role at its next start ------
    Entry(SAGEMAKER, "CreateNotebookInstanceLifecycleConfig", Meaning.CREATES_ACCESS,
          "created notebook lifecycle configuration {config} in {region}",
          {"config": "requestParameters.notebookInstanceLifecycleConfigName"},
          (Command("sagemaker", "DeleteNotebookInstanceLifecycleConfig", {
              "NotebookInstanceLifecycleConfigName": "{config}"}),),
          note="read its scripts first (describe-notebook-instance-lifecycle-config): they "
               "are evidence; detach it from any notebook that uses it before deleting",
          techniques=("aws.execution.sagemaker-update-lifecycle-config", "T1648")),
    Entry(SAGEMAKER, "UpdateNotebookInstance", Meaning.CREATES_ACCESS,
          "attached lifecycle configuration {config} to notebook {notebook} in {region}",
          {"notebook": "requestParameters.notebookInstanceName",
           "config": "requestParameters.lifecycleConfigName"},
          (Command("sagemaker", "UpdateNotebookInstance", {
              "NotebookInstanceName": "{notebook}", "DisassociateLifecycleConfig": True}),),
          note="the notebook must be stopped first; if it started since, its role's "
               "credentials may be the attacker's: treat the role as exposed",
          when={"requestParameters.lifecycleConfigName": PRESENT}, variant="lifecycle",
          techniques=("aws.execution.sagemaker-update-lifecycle-config", "T1648")),
)
