"""Creates the template's KMS keys, DynamoDB tables (with their streams) and SQS queues in moto, read
from template.yaml itself, and reads the template's SQS and DynamoDB event source mappings: the
local stack has no second list to drift.

Encryption at rest is created as the template says (the key, its alias and policy, the table's and
queues' SSE settings naming it) so that the wiring is followed and checked here too: a key that
cannot be created or a reference that does not resolve fails the local stack as it would fail a
deploy. It is not encryption: moto records these settings, encrypts nothing and evaluates no key
or queue policy. Queue policies are not applied at all (moto would not enforce them, and the local
endpoint is plain HTTP on loopback, the very thing the template's TLS-only policy refuses).

Only the intrinsics these resources use are resolved (Ref, Fn::Sub, Fn::GetAtt ...Arn, and
Fn::Join, Fn::Split, Fn::Select for the queue names); anything
else is an error that names the resource, so a template change that the local stack cannot follow
fails loudly instead of silently diverging.
"""

import json
import os
import re
import uuid

import boto3
from cfnlint.decode import decode

ACCOUNT = "123456789012"


class TemplateError(Exception):
    pass


def load(path):
    template, errors = decode(path)
    if errors or template is None:
        raise TemplateError(f"{path}: " + "; ".join(str(e) for e in errors))
    return template


class Resolver:
    def __init__(self, template, stack, region, params):
        self.template = template
        self.stack = stack
        self.region = region
        self.params = params
        self.physical = {}  # logical id -> {"Ref": ..., "Arn": ...}

    def pseudo(self, name):
        return {
            "AWS::StackName": self.stack,
            # A stack id as CloudFormation forms it; the UUID is fixed per stack name, so a
            # re-provisioned local stack finds the same queue names.
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT}:stack/{self.stack}/"
                            f"{uuid.uuid5(uuid.NAMESPACE_URL, 'switchboard:' + self.stack)}",
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def ref(self, name, where):
        if self.pseudo(name) is not None:
            return self.pseudo(name)
        if name in self.params:
            return self.params[name]
        param = self.template.get("Parameters", {}).get(name)
        if param is not None and "Default" in param:
            return str(param["Default"])
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise TemplateError(f"{where}: cannot resolve Ref {name} locally")

    def resolve(self, value, where):
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg, where)
            if fn == "Fn::Sub":
                if not isinstance(arg, str):
                    raise TemplateError(f"{where}: only the one-string form of Fn::Sub is supported")

                def sub(m):
                    name = m.group(1)
                    if "." in name:
                        logical, attr = name.split(".", 1)
                        return self.getatt(logical, attr, where)
                    return self.ref(name, where)

                return re.sub(r"\$\{([^}!][^}]*)\}", sub, arg)
            if fn == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.getatt(logical, attr, where)
            if fn == "Fn::Join":
                delimiter, items = arg
                return delimiter.join(str(v) for v in self.resolve(items, where))
            if fn == "Fn::Split":
                delimiter, text = arg
                return str(self.resolve(text, where)).split(delimiter)
            if fn == "Fn::Select":
                index, items = arg
                return self.resolve(items, where)[int(self.resolve(index, where))]
            if fn.startswith("Fn::") or fn == "Condition":
                raise TemplateError(f"{where}: {fn} is not supported by the local stack")
        if isinstance(value, dict):
            return {k: self.resolve(v, where) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v, where) for v in value]
        return value

    def getatt(self, logical, attr, where):
        if logical in self.physical and attr in self.physical[logical]:
            return self.physical[logical][attr]
        raise TemplateError(f"{where}: cannot resolve {logical}.{attr} (not created yet, or unsupported)")


def resources_of(template, kind):
    return [(lid, r) for lid, r in template.get("Resources", {}).items() if r.get("Type") == kind]


KEY_TAG = "switchboard:local-logical-id"


def existing_key(kms, tag_value):
    """The key an earlier provision against this moto created for the same stack and logical id:
    reusing it keeps provisioning repeatable (queues refuse a changed KmsMasterKeyId)."""
    for page in kms.get_paginator("list_keys").paginate():
        for k in page["Keys"]:
            tags = kms.list_resource_tags(KeyId=k["KeyId"]).get("Tags", [])
            if {"TagKey": KEY_TAG, "TagValue": tag_value} in tags:
                return kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]
    return None


def create_keys(resolver, kms):
    for lid, res in resources_of(resolver.template, "AWS::KMS::Key"):
        props = resolver.resolve(res.get("Properties", {}), lid)
        args = {k: props[k] for k in ("Description", "KeyUsage", "KeySpec", "MultiRegion") if k in props}
        if "KeyPolicy" in props:
            policy = props["KeyPolicy"]
            args["Policy"] = policy if isinstance(policy, str) else json.dumps(policy)
        tag_value = f"{resolver.stack}/{lid}"
        meta = existing_key(kms, tag_value)
        if meta is None:
            meta = kms.create_key(**args, Tags=[{"TagKey": KEY_TAG, "TagValue": tag_value}])["KeyMetadata"]
        elif "Policy" in args:
            kms.put_key_policy(KeyId=meta["KeyId"], PolicyName="default", Policy=args["Policy"])
        if props.get("EnableKeyRotation"):
            kms.enable_key_rotation(KeyId=meta["KeyId"])
        resolver.physical[lid] = {"Ref": meta["KeyId"], "Arn": meta["Arn"], "KeyId": meta["KeyId"]}
    for lid, res in resources_of(resolver.template, "AWS::KMS::Alias"):
        props = resolver.resolve(res.get("Properties", {}), lid)
        try:
            kms.create_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        except kms.exceptions.AlreadyExistsException:
            kms.update_alias(AliasName=props["AliasName"], TargetKeyId=props["TargetKeyId"])
        resolver.physical[lid] = {"Ref": props["AliasName"]}


def create_queues(resolver, sqs, visibility=None):
    queues = resources_of(resolver.template, "AWS::SQS::Queue")
    pending = dict(queues)
    # Dead-letter queues first: a queue's RedrivePolicy needs its DLQ's ARN.
    while pending:
        progressed = False
        for lid, res in list(pending.items()):
            try:
                props = resolver.resolve(res.get("Properties", {}), lid)
            except TemplateError:
                continue
            name = props.get("QueueName") or f"{resolver.stack}-{lid}" + (".fifo" if props.get("FifoQueue") else "")
            attrs = {}
            for key in ("FifoQueue", "ContentBasedDeduplication", "VisibilityTimeout", "MessageRetentionPeriod",
                        "DelaySeconds", "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize",
                        "DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled",
                        "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds"):
                if key in props:
                    v = props[key]
                    attrs[key] = str(v).lower() if isinstance(v, bool) else str(v)
            if visibility is not None and "VisibilityTimeout" in attrs:
                attrs["VisibilityTimeout"] = str(visibility)
            if "RedrivePolicy" in props:
                attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
            url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            resolver.physical[lid] = {"Ref": url, "Arn": arn, "QueueName": name}
            del pending[lid]
            progressed = True
        if not progressed:
            # Resolve once more to raise the real error for the first stuck queue.
            lid, res = next(iter(pending.items()))
            resolver.resolve(res.get("Properties", {}), lid)
            raise TemplateError(f"{lid}: could not be created")


GSI_KEYS = ("IndexName", "KeySchema", "Projection")


def create_tables(resolver, ddb):
    for lid, res in resources_of(resolver.template, "AWS::DynamoDB::Table"):
        props = resolver.resolve(res.get("Properties", {}), lid)
        name = props.get("TableName") or f"{resolver.stack}-{lid}"
        args = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        if args["BillingMode"] == "PROVISIONED":
            args["ProvisionedThroughput"] = props["ProvisionedThroughput"]
        if props.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [{k: g[k] for k in GSI_KEYS if k in g}
                                              for g in props["GlobalSecondaryIndexes"]]
        if props.get("LocalSecondaryIndexes"):
            args["LocalSecondaryIndexes"] = props["LocalSecondaryIndexes"]
        sse = props.get("SSESpecification")
        if sse:
            # CloudFormation's names differ from the API's (SSEEnabled vs Enabled).
            args["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
            for key in ("SSEType", "KMSMasterKeyId"):
                if key in sse:
                    args["SSESpecification"][key] = sse[key]
        stream = props.get("StreamSpecification")
        if stream:
            if set(stream) != {"StreamViewType"}:
                raise TemplateError(f"{lid}: StreamSpecification: only StreamViewType is supported locally, "
                                    f"not {sorted(set(stream) - {'StreamViewType'})}")
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        try:
            ddb.create_table(**args)
        except ddb.exceptions.ResourceInUseException:
            # Provisioned before (against the same moto): a stream the template gained since is added.
            if stream and "LatestStreamArn" not in ddb.describe_table(TableName=name)["Table"]:
                ddb.update_table(TableName=name, StreamSpecification=args["StreamSpecification"])
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": True})
        pitr = props.get("PointInTimeRecoverySpecification")
        if pitr and pitr.get("PointInTimeRecoveryEnabled"):
            ddb.update_continuous_backups(TableName=name, PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": True})
        table = ddb.describe_table(TableName=name)["Table"]
        resolver.physical[lid] = {"Ref": name, "Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            resolver.physical[lid]["StreamArn"] = table["LatestStreamArn"]


# The event properties each stand-in follows; any other is an error, not silently ignored.
SQS_EVENT_PROPERTIES = {"Queue", "BatchSize", "FunctionResponseTypes"}
DYNAMODB_EVENT_PROPERTIES = {
    "Stream", "StartingPosition", "BatchSize", "MaximumBatchingWindowInSeconds", "FilterCriteria",
    "FunctionResponseTypes", "BisectBatchOnFunctionError", "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds", "DestinationConfig", "ParallelizationFactor", "Enabled",
}


def event_source_mappings(resolver):
    """The SQS and DynamoDB stream event sources of the template's functions, as the local
    stand-ins (dev/sqs_bridge.py, dev/stream_bridge.py) need them."""
    mappings = []
    for lid, res in resources_of(resolver.template, "AWS::Serverless::Function"):
        props = res.get("Properties", {})
        timeout = props.get("Timeout", resolver.template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
        # cargo lambda watch names a function after its binary: the crate at CodeUri.
        function = os.path.basename(str(props.get("CodeUri", lid)).rstrip("/"))
        for ename, event in (props.get("Events") or {}).items():
            where = f"{lid}.Events.{ename}"
            kind = event.get("Type")
            ep = event.get("Properties", {})
            if kind == "SQS":
                unknown(ep, SQS_EVENT_PROPERTIES, where)
                queue_arn = resolver.resolve(ep["Queue"], where)
                queue = by_arn(resolver, queue_arn, where)
                mappings.append({
                    "type": "SQS",
                    "function": function,
                    "queue_url": queue["Ref"],
                    "queue_arn": queue_arn,
                    "batch_size": int(ep.get("BatchSize", 10)),
                    "report_batch_item_failures": "ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                    "timeout": int(timeout),
                })
            elif kind == "DynamoDB":
                mappings.append(dynamodb_mapping(resolver, function, int(timeout), resolver.resolve(ep, where), where))
    return mappings


def unknown(props, known, where):
    extra = sorted(set(props) - known)
    if extra:
        raise TemplateError(f"{where}: {', '.join(extra)} not followed by the local event source stand-in")


def by_arn(resolver, arn, where):
    found = next((v for v in resolver.physical.values() if arn in (v.get("Arn"), v.get("StreamArn"))), None)
    if found is None:
        raise TemplateError(f"{where}: {arn} is none of the resources created locally")
    return found


def dynamodb_mapping(resolver, function, timeout, ep, where):
    unknown(ep, DYNAMODB_EVENT_PROPERTIES, where)
    stream_arn = ep["Stream"]
    table = by_arn(resolver, stream_arn, where)
    if table.get("StreamArn") != stream_arn:
        raise TemplateError(f"{where}: Stream must be a table's StreamArn")
    if ep.get("StartingPosition") not in ("TRIM_HORIZON", "LATEST"):
        raise TemplateError(f"{where}: StartingPosition must be TRIM_HORIZON or LATEST")
    if int(ep.get("ParallelizationFactor", 1)) != 1:
        raise TemplateError(f"{where}: ParallelizationFactor other than 1 is not followed locally")
    if ep.get("Enabled", True) is not True:
        raise TemplateError(f"{where}: a disabled mapping is not followed locally")
    patterns = []
    for f in (ep.get("FilterCriteria") or {}).get("Filters", []):
        try:
            patterns.append(json.loads(f["Pattern"]))
        except (KeyError, TypeError, ValueError) as e:
            raise TemplateError(f"{where}: FilterCriteria: a filter's Pattern must be a JSON string ({e})") from e
    on_failure = None
    destination = (ep.get("DestinationConfig") or {}).get("OnFailure")
    if destination:
        queue = by_arn(resolver, destination.get("Destination"), where)
        if destination.get("Type", "SQS") != "SQS" or "QueueName" not in queue:
            raise TemplateError(f"{where}: only an SQS queue is followed locally as the OnFailure destination")
        on_failure = {"queue_url": queue["Ref"], "queue_arn": destination["Destination"]}
    return {
        "type": "DynamoDB",
        "function": function,
        "function_arn": f"arn:aws:lambda:{resolver.region}:{ACCOUNT}:function:{function}",
        "stream_arn": stream_arn,
        "table": table["Ref"],
        "starting_position": ep["StartingPosition"],
        "batch_size": int(ep.get("BatchSize", 100)),
        "batching_window": int(ep.get("MaximumBatchingWindowInSeconds", 0)),
        "filters": patterns,
        "report_batch_item_failures": "ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
        "bisect": bool(ep.get("BisectBatchOnFunctionError", False)),
        "max_retries": int(ep.get("MaximumRetryAttempts", -1)),
        "max_record_age": int(ep.get("MaximumRecordAgeInSeconds", -1)),
        "on_failure": on_failure,
        "timeout": timeout,
    }


def provision(template_path, endpoint, stack, region, params=None, visibility=None):
    """Creates everything; returns {logical id: physical ids} and the event source mappings.
    `visibility` (seconds) replaces the queues' visibility timeouts, for tests that wait on them."""
    template = load(template_path)
    resolver = Resolver(template, stack, region, params or {})
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)
    # Keys first: the table and the queues name theirs.
    create_keys(resolver, session.client("kms", endpoint_url=endpoint))
    create_queues(resolver, session.client("sqs", endpoint_url=endpoint), visibility)
    create_tables(resolver, session.client("dynamodb", endpoint_url=endpoint))
    return resolver.physical, event_source_mappings(resolver)
