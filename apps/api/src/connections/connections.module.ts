import { Module } from '@nestjs/common';
import { ConnectionsController } from './connections.controller.js';
import { ConnectionsService } from './connections.service.js';
import { ClientAccessService } from './client-access.service.js';

@Module({ controllers: [ConnectionsController], providers: [ConnectionsService, ClientAccessService], exports: [ConnectionsService] })
export class ConnectionsModule {}
