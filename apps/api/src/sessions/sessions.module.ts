import { Module } from '@nestjs/common';
import { ChainVerifierService } from './chain-verifier.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';

@Module({ controllers: [SessionsController], providers: [SessionsService, ChainVerifierService], exports: [SessionsService, ChainVerifierService] })
export class SessionsModule {}
