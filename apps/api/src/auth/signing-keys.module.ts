import { Global, Module } from '@nestjs/common';
import { SigningKeysService } from './signing-keys.service.js';

@Global()
@Module({ providers: [SigningKeysService], exports: [SigningKeysService] })
export class SigningKeysModule {}
