"""The gRPC PipelineService: register, get and list pipelines (service/pipelines.py decides)."""

from __future__ import annotations

from pipelinejobs_client.api.v1 import pipeline_service_pb2 as pb
from pipelinejobs_client.api.v1 import pipeline_service_pb2_grpc as pb_grpc
from pipelinejobs_server.service.pipelines import Pipelines

from .convert import pipeline_to_proto, struct_to_dict
from .interceptors import principal
from .interceptors.around import Context
from .replies import fitted


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(self, pipelines: Pipelines, reply_limit: int) -> None:
        self._pipelines = pipelines
        self._reply_limit = reply_limit  # the server's max_send_message_length: list replies fit in it

    async def RegisterPipeline(
        self, request: pb.RegisterPipelineRequest, context: Context
    ) -> pb.RegisterPipelineResponse:
        record, created = await self._pipelines.register(
            principal(),
            name=request.name,
            description=request.description,
            components=[(component.id, component.version) for component in request.components],
            options=struct_to_dict(request.options, "options"),
        )
        return pb.RegisterPipelineResponse(pipeline=pipeline_to_proto(record), created=created)

    async def GetPipeline(self, request: pb.GetPipelineRequest, context: Context) -> pb.GetPipelineResponse:
        record = await self._pipelines.get(principal(), request.uuid)
        return pb.GetPipelineResponse(pipeline=pipeline_to_proto(record))

    async def ListPipelines(
        self, request: pb.ListPipelinesRequest, context: Context
    ) -> pb.ListPipelinesResponse:
        page = await self._pipelines.page(principal(), request.page_token, request.page_size)
        pipelines, token = fitted(page, pipeline_to_proto, self._reply_limit)
        return pb.ListPipelinesResponse(pipelines=pipelines, next_page_token=token)
