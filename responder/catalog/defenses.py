"""What blinds the defenders: CloudTrail trails stopped, deleted or filtered, GuardDuty
disabled or told to trust and archive, Security Hub and AWS Config turned off, VPC flow
logs, DNS query logs and log groups deleted (MITRE T1562.001, T1562.008).

RESTORE entries name the defense contain-attacker turns back on itself (`trail`,
`detector`, `recorder`); their undo is the command a human would run for it.
"""

from __future__ import annotations

from responder.catalog.model import Command, Entry, Manual, Meaning, Response

CLOUDTRAIL = "cloudtrail.amazonaws.com"
GUARDDUTY = "guardduty.amazonaws.com"
SECURITYHUB = "securityhub.amazonaws.com"
CONFIG = "config.amazonaws.com"
EC2 = "ec2.amazonaws.com"
RESOLVER = "route53resolver.amazonaws.com"
LOGS = "logs.amazonaws.com"
_W = Meaning.WEAKENS_DEFENSES
_LOGS = "T1562.008"
"""MITRE ATT&CK: Impair Defenses, Disable or Modify Cloud Logs."""
_TOOLS = "T1562.001"
"""MITRE ATT&CK: Impair Defenses, Disable or Modify Tools."""

_TRAIL = {"trail": "requestParameters.name"}
_SELECTORS = {"trail": "requestParameters.trailName"}
_DETECTOR = {"detector": "requestParameters.detectorId"}
_DEFAULT_SELECTOR = '[{"ReadWriteType":"All","IncludeManagementEvents":true}]'
"""CloudTrail's default event selector: every management event, read and write."""

_CLOUDTRAIL: tuple[Entry, ...] = (
    Entry(CLOUDTRAIL, "StopLogging", _W, "stopped logging of CloudTrail trail {trail} in {region}",
          _TRAIL, (Command("cloudtrail", "StartLogging", {"Name": "{trail}"}),),
          response=Response.RESTORE, handler="trail",
          techniques=("aws.defense-evasion.cloudtrail-stop", _LOGS)),
    Entry(CLOUDTRAIL, "DeleteTrail", _W, "deleted CloudTrail trail {trail} in {region}", _TRAIL,
          (Command("cloudtrail", "CreateTrail", {
              "Name": "{trail}", "S3BucketName": Manual("the deleted trail's bucket")}),
           Command("cloudtrail", "StartLogging", {"Name": "{trail}"})),
          note="give create-trail the trail's name (the last part if the record names its "
               "ARN) and its other settings as before (multi-region, KMS key, CloudWatch "
               "Logs, event selectors): DescribeTrails output or AWS Config history has them",
          techniques=("aws.defense-evasion.cloudtrail-delete", _LOGS)),
    Entry(CLOUDTRAIL, "UpdateTrail", _W,
          "stopped CloudTrail trail {trail} recording global service events (IAM, STS) "
          "in {region}", _TRAIL,
          (Command("cloudtrail", "UpdateTrail", {"Name": "{trail}",
                                                 "IncludeGlobalServiceEvents": True}),),
          when={"requestParameters.includeGlobalServiceEvents": "false"}, variant="global",
          techniques=(_LOGS,)),
    Entry(CLOUDTRAIL, "UpdateTrail", _W,
          "made CloudTrail trail {trail} record only its home region {region}", _TRAIL,
          (Command("cloudtrail", "UpdateTrail", {"Name": "{trail}",
                                                 "IsMultiRegionTrail": True}),),
          when={"requestParameters.isMultiRegionTrail": "false"}, variant="multiregion",
          techniques=(_LOGS,)),
    Entry(CLOUDTRAIL, "UpdateTrail", _W, "changed the settings of CloudTrail trail {trail} "
          "in {region}", {**_TRAIL, "bucket": "requestParameters.s3BucketName"},
          (Command("cloudtrail", "UpdateTrail", {
              "Name": "{trail}", "S3BucketName": Manual("the trail's bucket before this event")}),),
          note="put back every setting the event's requestParameters changed (bucket, KMS "
               "key, SNS topic, CloudWatch Logs group and role) as it was before",
          techniques=(_LOGS,)),
    Entry(CLOUDTRAIL, "PutEventSelectors", _W,
          "stopped CloudTrail trail {trail} recording management events in {region}",
          _SELECTORS,
          (Command("cloudtrail", "PutEventSelectors", {"TrailName": "{trail}",
                                                       "EventSelectors": _DEFAULT_SELECTOR}),),
          note="that is CloudTrail's default selector; add back any data-event selectors "
               "the trail had before",
          when={"requestParameters.eventSelectors[].includeManagementEvents": "false"},
          variant="management",
          techniques=("aws.defense-evasion.cloudtrail-event-selectors", _LOGS)),
    Entry(CLOUDTRAIL, "PutEventSelectors", _W,
          "changed which events CloudTrail trail {trail} records in {region}", _SELECTORS,
          (Command("cloudtrail", "PutEventSelectors", {
              "TrailName": "{trail}",
              "EventSelectors": Manual("file:// the selectors before this event")}),),
          note="if the trail had advanced event selectors, give those with "
               "--advanced-event-selectors instead",
          techniques=("aws.defense-evasion.cloudtrail-event-selectors", _LOGS)),
    Entry(CLOUDTRAIL, "PutInsightSelectors", _W,
          "changed the Insights selectors of CloudTrail trail {trail} in {region}", _SELECTORS,
          (Command("cloudtrail", "PutInsightSelectors", {
              "TrailName": "{trail}",
              "InsightSelectors": Manual("the Insights selectors before this event")}),),
          techniques=(_LOGS,)),
)

_GUARDDUTY: tuple[Entry, ...] = (
    Entry(GUARDDUTY, "UpdateDetector", _W, "suspended GuardDuty detector {detector} in {region}",
          _DETECTOR,
          (Command("guardduty", "UpdateDetector", {"DetectorId": "{detector}",
                                                   "Enable": True}),),
          response=Response.RESTORE, handler="detector",
          when={"requestParameters.enable": "false"}, variant="disable",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "UpdateDetector", _W,
          "turned off protection features of GuardDuty detector {detector} in {region}",
          {**_DETECTOR, "features": "requestParameters.features[].name"},
          (Command("guardduty", "UpdateDetector", {
              "DetectorId": "{detector}",
              "Features": Manual("Name=FEATURE,Status=ENABLED for each feature turned off")}),),
          when={"requestParameters.features[].status": "DISABLED"}, variant="features",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "UpdateDetector", _W,
          "changed the settings of GuardDuty detector {detector} in {region}", _DETECTOR,
          (Command("guardduty", "UpdateDetector", {
              "DetectorId": "{detector}",
              "FindingPublishingFrequency": Manual("the frequency before this event"),
              "Features": Manual("the features before this event")}),),
          note="give only the settings the event's requestParameters changed",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "DeleteDetector", _W, "deleted GuardDuty detector {detector} in {region}",
          _DETECTOR, (Command("guardduty", "CreateDetector", {"Enable": True}),),
          note="its findings went with it; re-create its trusted IP lists, threat lists, "
               "filters, export destination and member accounts as they were",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "CreateIPSet", _W,
          "added trusted IP list {ipset} from {location} to GuardDuty detector {detector} "
          "in {region}",
          {"ipset": "responseElements.ipSetId", **_DETECTOR,
           "location": "requestParameters.location"},
          (Command("guardduty", "DeleteIPSet", {"DetectorId": "{detector}",
                                                "IpSetId": "{ipset}"}),),
          note="GuardDuty raises no findings for traffic from a trusted list's addresses",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "UpdateIPSet", _W,
          "changed trusted IP list {ipset} of GuardDuty detector {detector} in {region}",
          {"ipset": "requestParameters.ipSetId", **_DETECTOR,
           "location": "requestParameters.location"},
          (Command("guardduty", "UpdateIPSet", {
              "DetectorId": "{detector}", "IpSetId": "{ipset}",
              "Location": Manual("the list's location before this event")}),),
          note="or deactivate the list (--no-activate) until its addresses are checked",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "CreateFilter", _W,
          "created GuardDuty suppression rule {filter} that archives findings of detector "
          "{detector} in {region}",
          {"filter": "requestParameters.name", **_DETECTOR},
          (Command("guardduty", "DeleteFilter", {"DetectorId": "{detector}",
                                                 "FilterName": "{filter}"}),),
          note="findings it archived while it ran are still there, archived",
          when={"requestParameters.action": "ARCHIVE"}, variant="archive",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "UpdateFilter", _W,
          "made GuardDuty filter {filter} archive findings of detector {detector} "
          "in {region}",
          {"filter": "requestParameters.filterName", **_DETECTOR},
          (Command("guardduty", "UpdateFilter", {"DetectorId": "{detector}",
                                                 "FilterName": "{filter}",
                                                 "Action": "NOOP"}),),
          note="if it archived before this event, put back its previous finding criteria "
               "instead",
          when={"requestParameters.action": "ARCHIVE"}, variant="archive",
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "ArchiveFindings", _W,
          "archived GuardDuty findings {findings} of detector {detector} in {region}",
          {"findings": "requestParameters.findingIds[]", **_DETECTOR},
          (Command("guardduty", "UnarchiveFindings", {"DetectorId": "{detector}",
                                                      "FindingIds": "{findings}"}),),
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "DeletePublishingDestination", _W,
          "deleted findings export destination {destination} of GuardDuty detector "
          "{detector} in {region}",
          {"destination": "requestParameters.destinationId", **_DETECTOR},
          (Command("guardduty", "CreatePublishingDestination", {
              "DetectorId": "{detector}", "DestinationType": "S3",
              "DestinationProperties": Manual(
                  "DestinationArn=its bucket ARN,KmsKeyArn=its KMS key ARN")}),),
          techniques=(_TOOLS,)),
    Entry(GUARDDUTY, "UpdatePublishingDestination", _W,
          "changed where findings export destination {destination} of GuardDuty detector "
          "{detector} writes in {region}",
          {"destination": "requestParameters.destinationId", **_DETECTOR,
           "bucket": "requestParameters.destinationProperties.destinationArn"},
          (Command("guardduty", "UpdatePublishingDestination", {
              "DetectorId": "{detector}", "DestinationId": "{destination}",
              "DestinationProperties": Manual(
                  "DestinationArn=the bucket ARN before this event,KmsKeyArn=its key ARN")}),),
          techniques=(_TOOLS,)),
    *(Entry(GUARDDUTY, name, _W,
            "took GuardDuty detector {detector} out of its administrator account's view "
            "in {region}", _DETECTOR,
            (Command("guardduty", "AcceptAdministratorInvitation", {
                "DetectorId": "{detector}",
                "AdministratorId": Manual("the administrator account id"),
                "InvitationId": Manual("the id of a new invitation from it")}),),
            note="the administrator account invites it again first (invite-members)",
            techniques=(_TOOLS,))
      for name in ("DisassociateFromAdministratorAccount", "DisassociateFromMasterAccount")),
    Entry(GUARDDUTY, "StopMonitoringMembers", _W,
          "stopped GuardDuty detector {detector} monitoring member accounts {accounts} "
          "in {region}",
          {**_DETECTOR, "accounts": "requestParameters.accountIds[]"},
          (Command("guardduty", "StartMonitoringMembers", {"DetectorId": "{detector}",
                                                           "AccountIds": "{accounts}"}),),
          techniques=(_TOOLS,)),
)

_SECURITYHUB: tuple[Entry, ...] = (
    Entry(SECURITYHUB, "DisableSecurityHub", _W, "disabled Security Hub in {region}",
          note="re-enable it in that region (aws securityhub enable-security-hub --region "
               "REGION), then its standards and integrations; its findings are gone",
          techniques=(_TOOLS,)),
    Entry(SECURITYHUB, "BatchDisableStandards", _W,
          "disabled Security Hub standards {standards} in {region}",
          {"subscriptions": "requestParameters.StandardsSubscriptionArns[]",
           "standards": "responseElements.StandardsSubscriptions[].StandardsArn"},
          (Command("securityhub", "BatchEnableStandards", {
              "StandardsSubscriptionRequests": Manual(
                  "StandardsArn=ARN for each standard disabled")}),),
          techniques=(_TOOLS,)),
    Entry(SECURITYHUB, "UpdateStandardsControl", _W,
          "disabled Security Hub control {control} in {region}",
          {"control": "requestParameters.StandardsControlArn"},
          (Command("securityhub", "UpdateStandardsControl", {
              "StandardsControlArn": "{control}", "ControlStatus": "ENABLED"}),),
          when={"requestParameters.ControlStatus": "DISABLED"}, variant="disable",
          techniques=(_TOOLS,)),
)

_RECORDER = {"recorder": "requestParameters.configurationRecorderName"}
_CONFIG: tuple[Entry, ...] = (
    Entry(CONFIG, "StopConfigurationRecorder", _W,
          "stopped AWS Config recorder {recorder} in {region}", _RECORDER,
          (Command("config", "StartConfigurationRecorder",
                   {"ConfigurationRecorderName": "{recorder}"}),),
          response=Response.RESTORE, handler="recorder", techniques=(_LOGS,)),
    Entry(CONFIG, "DeleteConfigurationRecorder", _W,
          "deleted AWS Config recorder {recorder} in {region}", _RECORDER,
          (Command("config", "PutConfigurationRecorder", {"ConfigurationRecorder": Manual(
              "name=RECORDER,roleARN=its role ARN,recordingGroup as before this event")}),
           Command("config", "StartConfigurationRecorder",
                   {"ConfigurationRecorderName": "{recorder}"})),
          techniques=(_LOGS,)),
    Entry(CONFIG, "DeleteDeliveryChannel", _W,
          "deleted AWS Config delivery channel {channel} in {region}",
          {"channel": "requestParameters.deliveryChannelName"},
          (Command("config", "PutDeliveryChannel", {"DeliveryChannel": Manual(
              "name=CHANNEL,s3BucketName=its bucket,snsTopicARN=its topic as before")}),),
          note="then start the recorder again (start-configuration-recorder)",
          techniques=(_LOGS,)),
    Entry(CONFIG, "DeleteConfigRule", _W, "deleted AWS Config rule {rule} in {region}",
          {"rule": "requestParameters.configRuleName"},
          (Command("config", "PutConfigRule", {
              "ConfigRule": Manual("file:// the rule's definition before this event")}),),
          techniques=(_TOOLS,)),
)

_LOGGING: tuple[Entry, ...] = (
    Entry(EC2, "DeleteFlowLogs", _W, "deleted VPC flow logs {flowlogs} in {region}",
          {"flowlogs": "requestParameters.DeleteFlowLogsRequest.FlowLogId[].content"},
          (Command("ec2", "CreateFlowLogs", {
              "ResourceIds": Manual("the VPC, subnet or interface ids they covered"),
              "ResourceType": Manual("VPC, Subnet or NetworkInterface"),
              "TrafficType": Manual("ALL, ACCEPT or REJECT as before"),
              "LogDestinationType": Manual("cloud-watch-logs or s3 as before"),
              "LogDestination": Manual("the log group or bucket ARN they wrote to")}),),
          note="DescribeFlowLogs output or AWS Config history has their settings",
          techniques=("aws.defense-evasion.vpc-remove-flow-logs", _LOGS)),
    Entry(RESOLVER, "DeleteResolverQueryLogConfig", _W,
          "deleted Route 53 Resolver query logging config {config} ({name}, to "
          "{destination}) in {region}",
          {"config": "requestParameters.resolverQueryLogConfigId",
           "name": "responseElements.resolverQueryLogConfig.name",
           "destination": "responseElements.resolverQueryLogConfig.destinationArn"},
          (Command("route53resolver", "CreateResolverQueryLogConfig", {
              "Name": "{name}", "DestinationArn": "{destination}",
              "CreatorRequestId": "responder-restore-{config}"}),
           Command("route53resolver", "AssociateResolverQueryLogConfig", {
               "ResolverQueryLogConfigId": Manual("the new config's id"),
               "ResourceId": Manual("each VPC it logged")})),
          note="its VPCs were disassociated before it could be deleted: look for "
               "DisassociateResolverQueryLogConfig events",
          techniques=("aws.defense-evasion.dns-delete-logs", _LOGS)),
    Entry(RESOLVER, "DisassociateResolverQueryLogConfig", _W,
          "stopped Route 53 Resolver query logging config {config} logging VPC {vpc} "
          "in {region}",
          {"config": "requestParameters.resolverQueryLogConfigId",
           "vpc": "requestParameters.resourceId"},
          (Command("route53resolver", "AssociateResolverQueryLogConfig", {
              "ResolverQueryLogConfigId": "{config}", "ResourceId": "{vpc}"}),),
          techniques=("aws.defense-evasion.dns-delete-logs", _LOGS)),
    Entry(LOGS, "DeleteLogGroup", _W, "deleted CloudWatch Logs log group {group} in {region}",
          {"group": "requestParameters.logGroupName"},
          (Command("logs", "CreateLogGroup", {"logGroupName": "{group}"}),),
          note="the events it held are gone; re-create it with its retention and KMS key, "
               "and re-point what wrote to it (a trail's CloudWatch Logs setting, "
               "subscriptions, metric filters and alarms)",
          techniques=(_LOGS,)),
)

ENTRIES: tuple[Entry, ...] = (*_CLOUDTRAIL, *_GUARDDUTY, *_SECURITYHUB, *_CONFIG, *_LOGGING)
