"""PipelineService over gRPC."""

from __future__ import annotations

from pipelinejobs_client.api.v1 import pipeline_service_pb2 as pb
from pipelinejobs_client.api.v1 import pipeline_service_pb2_grpc as pb_grpc
from pipelinejobs_server.service import paging
from pipelinejobs_server.service.credentials import Credentials, Principal
from pipelinejobs_server.service.pipelines import PipelineService
from pipelinejobs_server.settings import Limits

from .calls import Context, rpc
from .convert import pipeline_to_proto, struct_to_dict
from .metrics import ServerMetrics

LISTING = "pipelines"


class PipelineServicer(pb_grpc.PipelineServiceServicer):
    def __init__(
        self, credentials: Credentials, service: PipelineService, limits: Limits, metrics: ServerMetrics
    ) -> None:
        self.credentials = credentials
        self.metrics = metrics
        self._service = service
        self._limits = limits

    @rpc
    async def RegisterPipeline(
        self, request: pb.RegisterPipelineRequest, context: Context, principal: Principal | None
    ) -> pb.RegisterPipelineResponse:
        record, created = await self._service.register(
            principal,
            name=request.name,
            description=request.description,
            components=[(component.id, component.version) for component in request.components],
            options=struct_to_dict(request.options, "options"),
        )
        return pb.RegisterPipelineResponse(pipeline=pipeline_to_proto(record), created=created)

    @rpc
    async def GetPipeline(
        self, request: pb.GetPipelineRequest, context: Context, principal: Principal | None
    ) -> pb.GetPipelineResponse:
        return pb.GetPipelineResponse(
            pipeline=pipeline_to_proto(await self._service.get(principal, request.uuid))
        )

    @rpc
    async def ListPipelines(
        self, request: pb.ListPipelinesRequest, context: Context, principal: Principal | None
    ) -> pb.ListPipelinesResponse:
        limit = paging.page_size(request.page_size, self._limits)
        after = paging.decode_moment(LISTING, request.page_token)
        records = await self._service.page(principal, after, limit)
        token = ""
        if len(records) == limit:
            last = records[-1]
            token = paging.encode_moment(LISTING, last.created_at, last.uuid)
        return pb.ListPipelinesResponse(
            pipelines=[pipeline_to_proto(record) for record in records], next_page_token=token
        )
