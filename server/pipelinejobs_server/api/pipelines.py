"""The gRPC PipelineService: register, get and list pipelines (service/pipelines.py decides)."""

from __future__ import annotations

from pipelinejobs_client.api.v1 import pipeline_service_pb2 as pb
from pipelinejobs_client.api.v1 import pipeline_service_pb2_grpc as pb_grpc
from pipelinejobs_server.service.pipelines import Pipelines

from .convert import pipeline_to_proto, struct_to_dict
from .interceptors import principal
from .interceptors.around import Context


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(self, pipelines: Pipelines) -> None:
        self._pipelines = pipelines

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
        records, token = await self._pipelines.page(principal(), request.page_token, request.page_size)
        return pb.ListPipelinesResponse(
            pipelines=[pipeline_to_proto(record) for record in records], next_page_token=token
        )
