"""Creates the template's DynamoDB tables and SQS queues in moto, read from template.yaml itself,
and reads the template's SQS event source mappings: the local stack has no second list to drift.

Only the intrinsics these resources use are resolved (Ref, Fn::Sub, Fn::GetAtt ...Arn); anything
else is an error that names the resource, so a template change that the local stack cannot follow
fails loudly instead of silently diverging.
"""

import json
import os
import re

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
                        "DeduplicationScope", "FifoThroughputLimit"):
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
        try:
            ddb.create_table(**args)
        except ddb.exceptions.ResourceInUseException:
            pass
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": True})
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        resolver.physical[lid] = {"Ref": name, "Arn": arn}


def event_source_mappings(resolver):
    """The SQS event sources of the template's functions, as the local stand-in needs them."""
    mappings = []
    for lid, res in resources_of(resolver.template, "AWS::Serverless::Function"):
        props = res.get("Properties", {})
        timeout = props.get("Timeout", resolver.template.get("Globals", {}).get("Function", {}).get("Timeout", 3))
        # cargo lambda watch names a function after its binary: the crate at CodeUri.
        function = os.path.basename(str(props.get("CodeUri", lid)).rstrip("/"))
        for ename, event in (props.get("Events") or {}).items():
            if event.get("Type") != "SQS":
                continue
            ep = event.get("Properties", {})
            queue_arn = resolver.resolve(ep["Queue"], f"{lid}.Events.{ename}")
            queue = next(v for v in resolver.physical.values() if v.get("Arn") == queue_arn)
            mappings.append({
                "function": function,
                "queue_url": queue["Ref"],
                "queue_arn": queue_arn,
                "batch_size": int(ep.get("BatchSize", 10)),
                "report_batch_item_failures": "ReportBatchItemFailures" in (ep.get("FunctionResponseTypes") or []),
                "timeout": int(timeout),
            })
    return mappings


def provision(template_path, endpoint, stack, region, params=None, visibility=None):
    """Creates everything; returns {logical id: physical ids} and the event source mappings.
    `visibility` (seconds) replaces the queues' visibility timeouts, for tests that wait on them."""
    template = load(template_path)
    resolver = Resolver(template, stack, region, params or {})
    session = boto3.session.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=region)
    create_queues(resolver, session.client("sqs", endpoint_url=endpoint), visibility)
    create_tables(resolver, session.client("dynamodb", endpoint_url=endpoint))
    return resolver.physical, event_source_mappings(resolver)
