import { Module } from '@nestjs/common';
import { ChainVerifierService } from './chain-verifier.service.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';
import { RecordingService } from './recording.service.js';

@Module({ controllers: [SessionsController], providers: [SessionsService, ChainVerifierService, RecordingService], exports: [SessionsService, ChainVerifierService] })
export class SessionsModule {}
