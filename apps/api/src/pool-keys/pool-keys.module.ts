import { Global, Module } from '@nestjs/common';
import { PoolKeysService } from './pool-keys.service.js';

@Global()
@Module({ providers: [PoolKeysService], exports: [PoolKeysService] })
export class PoolKeysModule {}
