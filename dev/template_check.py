#!/usr/bin/env python3
"""Checks template.yaml for what an operator relies on and cfn-lint cannot know: every
dead-letter queue (a queue's RedrivePolicy target, or an event source mapping's on-failure
destination) has a depth alarm, every function reading a stream (DynamoDB, Kinesis) has an
IteratorAge alarm, the relay's counts of outbox items it skips for good have alarms, every
function logs to a group of the template's with a retention, every alarm notifies the alarm
topic and treats missing data as no breach, and alarms on the project's own metrics read the
namespace the functions write to; and that web/ is served as the local stack serves it: the
CloudFront response headers policy's Content-Security-Policy is dev/web_server.py's with the chat
API's origin, from a bucket that is not public and refuses requests without TLS.

  .venv/bin/python dev/template_check.py [template.yaml]

Prints one line per problem and exits 1 if there is any.
"""

import os
import sys

from cfnlint.decode import decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "dev"))

import web_server  # noqa: E402

# The chat API's origin as the template writes it (the ChatApiUrl output's).


def ref_name(value):
    """The logical id a Ref or GetAtt points at, or None."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return arg
        if fn == "Fn::GetAtt":
            return (arg if isinstance(arg, list) else arg.split(".", 1))[0]
    return None


STREAM_EVENTS = ("DynamoDB", "Kinesis")

# Outbox items the relay skips for good (not well formed, or refused by SQS whatever the retry)
# hold up nothing and stay in the table, where nothing sends them: these counts (Sum, no
# dimensions) are the only sign of them. Each must be alarmed and still be written by the relay.
RELAY_SOURCE = os.path.join(ROOT, "shared", "src", "relay.rs")
SKIPPED_OUTBOX_METRICS = ("OutboxMalformed", "OutboxRefused")


def is_stream_arn(value, resources):
    """Whether an EventSourceArn names a DynamoDB table's stream or a Kinesis stream."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        arg = value["Fn::GetAtt"]
        logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        kind = resources.get(logical, {}).get("Type")
        return (kind == "AWS::DynamoDB::Table" and attr == "StreamArn") or kind == "AWS::Kinesis::Stream"
    return isinstance(value, str) and (":kinesis:" in value or "/stream/" in value)


def check(template):
    problems = []
    resources = template.get("Resources", {})
    of_type = lambda kind: {k: r for k, r in resources.items() if r.get("Type") == kind}  # noqa: E731
    alarms = of_type("AWS::CloudWatch::Alarm")
    topics = of_type("AWS::SNS::Topic")

    def alarmed(metric, target, namespace):
        """An alarm of the template on `metric` with a dimension naming resource `target`."""
        return any(
            a["Properties"].get("MetricName") == metric
            and a["Properties"].get("Namespace") == namespace
            and any(ref_name(d.get("Value")) == target for d in a["Properties"].get("Dimensions", []))
            for a in alarms.values())

    queues = of_type("AWS::SQS::Queue")
    dlqs = {ref_name(q.get("Properties", {}).get("RedrivePolicy", {}).get("deadLetterTargetArn"))
            for q in queues.values()}
    # An event source mapping's on-failure destination is a dead-letter queue too: what lands there
    # was given up on. Mappings come as SAM function events or as resources of their own.
    mappings = [e.get("Properties", {}) for fn in of_type("AWS::Serverless::Function").values()
                for e in (fn.get("Properties", {}).get("Events") or {}).values()]
    mappings += [m.get("Properties", {}) for m in of_type("AWS::Lambda::EventSourceMapping").values()]
    dlqs |= {ref_name(m.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")) for m in mappings}
    for dlq in sorted((dlqs - {None}) & set(queues)):
        if not alarmed("ApproximateNumberOfMessagesVisible", dlq, "AWS/SQS"):
            problems.append(f"{dlq}: dead-letter queue without an ApproximateNumberOfMessagesVisible alarm")

    # A function fed by a stream falls behind silently: a failing batch holds its shard and
    # the records behind it wait. IteratorAge is the only metric that shows it.
    stream_fns = {lid for lid, fn in of_type("AWS::Serverless::Function").items()
                  if any(e.get("Type") in STREAM_EVENTS
                         for e in (fn.get("Properties", {}).get("Events") or {}).values())}
    stream_fns |= {ref_name(m.get("Properties", {}).get("FunctionName"))
                   for m in of_type("AWS::Lambda::EventSourceMapping").values()
                   if is_stream_arn(m.get("Properties", {}).get("EventSourceArn"), resources)}
    for fn in sorted(stream_fns - {None}):
        if not alarmed("IteratorAge", fn, "AWS/Lambda"):
            problems.append(f"{fn}: reads a stream but has no AWS/Lambda IteratorAge alarm")

    groups = of_type("AWS::Logs::LogGroup")
    for lid, res in groups.items():
        if "RetentionInDays" not in res.get("Properties", {}):
            problems.append(f"{lid}: log group without RetentionInDays (kept forever)")
    for lid, fn in of_type("AWS::Serverless::Function").items():
        group = ref_name(fn.get("Properties", {}).get("LoggingConfig", {}).get("LogGroup"))
        if group not in groups:
            problems.append(f"{lid}: LoggingConfig.LogGroup does not name a log group of the template "
                            "(Lambda would create one that never expires)")

    namespace = (template.get("Globals", {}).get("Function", {}).get("Environment", {})
                 .get("Variables", {}).get("METRICS_NAMESPACE"))
    if namespace is None:
        problems.append("Globals: no METRICS_NAMESPACE for the functions")
    with open(RELAY_SOURCE, encoding="utf-8") as f:
        relay_source = f.read()
    for metric in SKIPPED_OUTBOX_METRICS:
        if f'"{metric}"' not in relay_source:
            problems.append(f"{metric}: no longer written by {os.path.relpath(RELAY_SOURCE, ROOT)}; "
                            "update SKIPPED_OUTBOX_METRICS and its alarm")
        if not any(a["Properties"].get("MetricName") == metric
                   and a["Properties"].get("Namespace") == namespace
                   and not a["Properties"].get("Dimensions")
                   and a["Properties"].get("Statistic") == "Sum"
                   for a in alarms.values()):
            problems.append(f"{metric}: the relay's count of outbox items it skips for good has no "
                            "Sum alarm (no dimensions) in the functions' namespace")
    for lid, alarm in alarms.items():
        props = alarm["Properties"]
        for key in ("AlarmActions", "OKActions"):
            if not any(ref_name(a) in topics for a in props.get(key, [])):
                problems.append(f"{lid}: {key} does not notify an SNS topic of the template")
        if props.get("TreatMissingData") != "notBreaching":
            problems.append(f"{lid}: TreatMissingData is not notBreaching")
        ns = props.get("Namespace")
        if ns is not None and not (isinstance(ns, str) and ns.startswith("AWS/")) and ns != namespace:
            problems.append(f"{lid}: namespace {ns} is not the functions' METRICS_NAMESPACE {namespace}")
    problems += check_web(resources, of_type)
    return problems


def check_web(resources, of_type):
    """The pages are tested locally under dev/web_server.py's policy; a CSP in the template that
    drifts from it would break (or loosen) them only once deployed."""
    problems = []
    # Deployed, the pages reach the chat API on their own origin (the distribution's /v1/*);
    # locally it is on another port, which the local policy adds to connect-src.
    want = web_server.csp(None)
    for lid, res in of_type("AWS::CloudFront::ResponseHeadersPolicy").items():
        csp = (res["Properties"]["ResponseHeadersPolicyConfig"].get("SecurityHeadersConfig", {})
               .get("ContentSecurityPolicy", {}).get("ContentSecurityPolicy"))
        if isinstance(csp, dict) and "Fn::Sub" in csp:
            csp = csp["Fn::Sub"]
        if csp != want:
            problems.append(f"{lid}: Content-Security-Policy is not dev/web_server.py's ({want!r}): {csp!r}")
    tls_denied = set()
    for res in of_type("AWS::S3::BucketPolicy").values():
        for st in res["Properties"].get("PolicyDocument", {}).get("Statement", []):
            if (st.get("Effect") == "Deny" and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"):
                tls_denied.add(ref_name(res["Properties"].get("Bucket")))
    for lid, res in of_type("AWS::S3::Bucket").items():
        props = res.get("Properties", {})
        block = props.get("PublicAccessBlockConfiguration", {})
        if not all(block.get(k) is True for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")):
            problems.append(f"{lid}: bucket without all four PublicAccessBlockConfiguration settings")
        if lid not in tls_denied:
            problems.append(f"{lid}: no bucket policy denies requests without TLS (aws:SecureTransport false)")
    return problems


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "template.yaml")
    template, errors = decode(path)
    if errors or template is None:
        sys.exit(f"{path}: " + "; ".join(str(e) for e in errors))
    problems = check(template)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"{path}: DLQ, iterator-age and skipped-outbox-item alarms, log retention, alarm actions and metric namespaces, web hosting in order")


if __name__ == "__main__":
    main()
