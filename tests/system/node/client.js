// A Node.js tool that knows PipelineJobs only through protos/: it registers a pipeline, creates a job,
// sends events and reads the history back, then prints a JSON summary for the Python test to check.
// Usage: node client.js HOST:PORT API_KEY PROTO_ROOT
"use strict";

const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const [address, apiKey, protoRoot] = process.argv.slice(2);
const definition = protoLoader.loadSync(
  ["pipelinejobs/v1/job_service.proto", "pipelinejobs/v1/pipeline_service.proto"].map((file) =>
    path.join(protoRoot, file),
  ),
  { includeDirs: [protoRoot], keepCase: true, longs: Number, enums: String, defaults: true },
);
const v1 = grpc.loadPackageDefinition(definition).pipelinejobs.v1;
const credentials = grpc.credentials.createInsecure();
const jobs = new v1.JobService(address, credentials);
const pipelines = new v1.PipelineService(address, credentials);
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${apiKey}`);

function call(client, method, request, meta = metadata) {
  return new Promise((resolve, reject) =>
    client[method](request, meta, { deadline: Date.now() + 10000 }, (error, reply) =>
      error ? reject(error) : resolve(reply),
    ),
  );
}

// google.protobuf.Struct as proto-loader represents it.
function struct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object)) {
    fields[key] = typeof value === "number" ? { number_value: value } : { string_value: String(value) };
  }
  return { fields };
}

async function main() {
  const { pipeline } = await call(pipelines, "RegisterPipeline", {
    name: "node-align",
    components: [{ id: "bwa", version: "0.7.17" }],
  });
  const created = await call(jobs, "CreateJob", {
    pipeline_uuid: pipeline.uuid,
    links: { lab: ["UW_BIOFAB"], experiment: ["Yeast-Gates"], sample: ["node-sample"] },
    data: struct({ tool: "node" }),
  });
  const send = (event, data) =>
    call(jobs, "SendEvent", {
      uuid: created.job.uuid,
      event,
      token: created.token,
      data: struct(data),
      idempotency_key: `node-${event}-${JSON.stringify(data)}`,
    });
  await send("JOB_EVENT_RUN", { step: 1 });
  await send("JOB_EVENT_UPDATE", { progress: 50 });
  const finished = await send("JOB_EVENT_FINISH", {});
  let refused = null;
  try {
    await send("JOB_EVENT_RUN", { again: 1 });
  } catch (error) {
    refused = grpc.status[error.code];
  }
  const { events } = await call(jobs, "ListJobEvents", { uuid: created.job.uuid });
  const verdict = await call(jobs, "VerifyHistory", { uuid: created.job.uuid });
  console.log(
    JSON.stringify({
      uuid: created.job.uuid,
      archive_path: created.job.archive_path,
      state: finished.job.state,
      refused,
      history: events.map((event) => ({ seq: event.seq, name: event.name, to: event.to_state })),
      valid: verdict.valid,
    }),
  );
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
