import { Global, Module } from '@nestjs/common';
import { AuthFailuresService } from './auth-failures.service.js';
import { ControlEventsService } from './control-events.service.js';

@Global()
@Module({ providers: [ControlEventsService, AuthFailuresService], exports: [ControlEventsService, AuthFailuresService] })
export class ControlEventsModule {}
