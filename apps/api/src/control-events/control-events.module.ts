import { Global, Module } from '@nestjs/common';
import { ControlEventsService } from './control-events.service.js';

@Global()
@Module({ providers: [ControlEventsService], exports: [ControlEventsService] })
export class ControlEventsModule {}
