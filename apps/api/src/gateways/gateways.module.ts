import { Module } from '@nestjs/common';
import { GatewaysController } from './gateways.controller.js';
import { GatewaysService } from './gateways.service.js';
import { HeartbeatSubscriber } from './heartbeat.subscriber.js';

@Module({ controllers: [GatewaysController], providers: [GatewaysService, HeartbeatSubscriber], exports: [GatewaysService] })
export class GatewaysModule {}
